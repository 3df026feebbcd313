"""Log-mel features (tfio DSP) and the keras-nlp tokenizers."""

import numpy as np
import tensorflow as tf

from vdg_tf.config import AudioSpec, TextSpec
from vdg_tf.data.features import TextTokenizer, log_mel, log_mel_frames


def test_log_mel_shape_and_pitch_lands_in_the_right_band():
    spec = AudioSpec(seconds=1.0)
    t = np.arange(spec.samples) / spec.sample_rate
    low = log_mel(tf.constant(np.sin(2 * np.pi * 250 * t).astype(np.float32)), spec).numpy()
    high = log_mel(tf.constant(np.sin(2 * np.pi * 2000 * t).astype(np.float32)), spec).numpy()
    assert low.shape == (log_mel_frames(spec), spec.mels, 1)
    assert low.mean(axis=(0, 2)).argmax() < high.mean(axis=(0, 2)).argmax()
    assert low.min() >= -1.01 and low.max() <= 1.01


def test_wordpiece_vocab_learned_and_saved(tmp_path):
    spec = TextSpec(max_tokens=6, vocab_size=200)
    tok = TextTokenizer.fit(["a day in the park", "night in the street"] * 20, spec)
    ids = tok(tf.constant(["day park", ""])).numpy()
    assert ids.shape == (2, 6) and ids.dtype == np.int32
    assert ids[0, 0] == tok.vocabulary.index("day") and np.all(ids[1] == 0)
    tok.save(tmp_path / "vocab.txt")
    again = TextTokenizer.load(tmp_path / "vocab.txt", spec)
    np.testing.assert_array_equal(again(tf.constant(["day park"])).numpy(), ids[:1])


def test_byte_fallback_needs_no_vocabulary():
    tok = TextTokenizer.fit([], TextSpec(tokenizer="byte", max_tokens=4))
    assert tok(tf.constant("hi")).numpy().tolist() == [104, 105, 0, 0]
