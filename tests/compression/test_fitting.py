"""Fine-tuning epochs of compression stages: their length, whatever the dataset can tell."""

import pytest
import tensorflow as tf

from vdg_tf.compression.fitting import epoch_steps


def test_epoch_steps_from_cardinality_a_count_or_the_caller():
    ds = tf.data.Dataset.range(10).batch(3)
    assert epoch_steps(ds) == 4
    filtered = tf.data.Dataset.range(10).filter(lambda x: x % 2 == 0).batch(2)
    assert int(filtered.cardinality()) < 0 and epoch_steps(filtered) == 3  # counted
    assert epoch_steps(ds.repeat(), steps_per_epoch=7) == 7
    with pytest.raises(ValueError, match="endless training stream needs steps_per_epoch"):
        epoch_steps(ds.repeat())
