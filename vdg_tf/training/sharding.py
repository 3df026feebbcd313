"""The training stream under a `tf.distribute` strategy: split by worker before decoding.

Handing a decoding pipeline to a multi-worker strategy as one dataset lets tf.data
auto-shard it, and a pipeline that starts from a list of rows and decodes in Python
(PyAV through `numpy_function`) has no files to shard: it falls back to DATA sharding,
where every worker decodes every clip and keeps 1/n of them. So each worker builds its
own stream from its own rows (`distribute_datasets_from_function` and the
`InputContext`: input pipeline i of n), batched at the per-replica batch.

`data.batch_size` is the per-replica batch: a step trains on the global batch,
`batch_size x replicas` (every replica of every worker), and an epoch is as many global
batches as cover the usable clips once. The learning rate is not rescaled.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

Shard = tuple[int, int]  # (input workers n, this worker's index i)


def global_batch(per_replica: int, strategy: tf.distribute.Strategy) -> int:
    """Clips one training step sees across every replica."""
    return per_replica * strategy.num_replicas_in_sync


def steps_per_epoch(usable: int, global_batch_size: int) -> int:
    """Global batches in one pass over `usable` clips (the last one may be short)."""
    return max(1, -(-usable // global_batch_size))


def shard_of(ctx: tf.distribute.InputContext) -> Shard | None:
    """`(n, i)` for input pipeline i of n, or None when one pipeline reads everything."""
    if ctx.num_input_pipelines <= 1:
        return None
    return ctx.num_input_pipelines, ctx.input_pipeline_id


def distributes(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` splits steps between replicas (else the plain dataset is fitted)."""
    return strategy.num_replicas_in_sync > 1 or strategy.extended._in_multi_worker_mode()


def sharded_stream(
    strategy: tf.distribute.Strategy, make: Callable[[Shard | None], tf.data.Dataset]
) -> tf.data.Dataset | tf.distribute.DistributedDataset:
    """The training stream: `make(shard)` per input worker (batched at the per-replica
    batch), distributed by `strategy`; `make(None)` itself when nothing is distributed."""
    if not distributes(strategy):
        return make(None)
    return strategy.distribute_datasets_from_function(lambda ctx: make(shard_of(ctx)))


def split_by_data(ds: tf.data.Dataset) -> tf.data.Dataset:
    """A validation stream for a distributed fit: each worker scores every n-th batch.

    Validation has an end, and shards of rows can end on different steps on different
    workers; batch-level (DATA) sharding of one stream keeps them in step, at the price
    of each worker decoding the (small, cached) validation split whole.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)
