"""Where a training runs: the ``tf.distribute`` strategy and the numeric precision.

Training always runs under a strategy -- TensorFlow's default one on a single device -- so
there is one training step and one input pipeline whatever the devices. The strategy and
the logical CPU devices must be chosen before TensorFlow first runs an operation.
"""
import functools
import json
import os

import keras
import tensorflow as tf

CHOICES = ('auto', 'none', 'mirrored', 'multi_worker')

# A collective (gradient all-reduce) that waits longer than this for another worker
# fails instead of hanging: the other worker died or lost the network. Generous, because
# a worker waits here while another compiles its step or writes a checkpoint.
COLLECTIVE_TIMEOUT_SECONDS = 600


def configure_cpu_devices(count, share_threads=True):
    """Splits the CPU into ``count`` logical devices, so mirrored training can run without
    GPUs; with ``share_threads`` each device's operations get an equal share of the cores,
    since the replicas run at once and would otherwise each ask for all of them. Raises
    ``ValueError`` once TensorFlow has started with another count."""
    cpu = tf.config.list_physical_devices('CPU')[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
        if share_threads and count > 1:
            tf.config.threading.set_intra_op_parallelism_threads(
                max(1, (os.cpu_count() or 1) // count))
    except RuntimeError:  # devices are fixed once the runtime has started
        started = len(tf.config.list_logical_devices('CPU'))
        if started != count:
            raise ValueError(f'--cpu_devices {count}: TensorFlow already started with '
                             f'{started} CPU device(s)') from None


def cluster_spec():
    """The ``TF_CONFIG`` of a multi-worker training (``None`` when unset); a one-line
    ``ValueError`` when it is not a usable description of a cluster."""
    text = os.environ.get('TF_CONFIG')
    if not text:
        return None
    try:
        config = json.loads(text)
        workers = config['cluster']['worker']
        task = config['task']
        task_type, index = task['type'], int(task['index'])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f'TF_CONFIG: expected {{"cluster": {{"worker": [...]}}, "task": '
                         f'{{"type": ..., "index": ...}}}}, got {text!r} ({e})') from None
    if task_type not in config['cluster'] or not 0 <= index < len(config['cluster'][task_type]):
        raise ValueError(f'TF_CONFIG: task {task_type} {index} is not in its cluster')
    if not workers:
        raise ValueError('TF_CONFIG: the cluster lists no worker')
    return config


def writes_logdir(kind):
    """Whether this process writes the logdir of a training under ``--distribute kind``:
    every one but the workers of a cluster (``TF_CONFIG``) that are not its chief (as
    ``is_chief``, known before the strategy starts TensorFlow's runtime)."""
    cluster = cluster_spec()
    if cluster is None or kind in ('none', 'mirrored'):
        return True
    task, members = cluster['task'], cluster['cluster']
    if task['type'] == 'chief':
        return True
    return task['type'] == 'worker' and int(task['index']) == 0 and 'chief' not in members


def choose_strategy(kind, cpu_devices=None):
    """The strategy for ``--distribute kind``: ``auto`` takes several workers when
    ``TF_CONFIG`` is set, else every GPU when there are several, else one device.
    ``cpu_devices``: the CPU split into that many logical devices, mirrored across when
    there are no GPUs. Raises ``ValueError`` for a choice the machine cannot run."""
    if kind not in CHOICES:
        raise ValueError(f'--distribute {kind}: expected one of {", ".join(CHOICES)}')
    cluster = cluster_spec()
    if cpu_devices is not None:
        configure_cpu_devices(cpu_devices)
    # Physical, not logical, devices: listing those would start the runtime, after which
    # a multi-worker strategy can no longer be set up.
    gpus = tf.config.list_physical_devices('GPU')
    if kind == 'auto':
        if cluster is not None:
            kind = 'multi_worker'
        elif len(gpus) > 1 or (not gpus and (cpu_devices or 1) > 1):
            kind = 'mirrored'
        else:
            kind = 'none'
    if kind == 'none':
        return tf.distribute.get_strategy()
    if kind == 'mirrored':
        devices = tf.config.list_logical_devices('GPU' if gpus else 'CPU')
        return _mirrored_strategy(tuple(d.name for d in devices))
    if cluster is None:
        raise ValueError('--distribute multi_worker: TF_CONFIG is not set (see docs/training.md)')
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=COLLECTIVE_TIMEOUT_SECONDS)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


@functools.cache
def _mirrored_strategy(devices):
    # One per set of devices and process: two would number their all-reduces alike, and
    # TensorFlow's collective executor would mistake one's for the other's.
    return tf.distribute.MirroredStrategy(list(devices))


def is_multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy):
    """Whether this process writes the logdir: always on one machine; in a cluster the
    ``chief`` task, or worker 0 when the cluster names no chief."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == 'chief':
        return True
    has_chief = 'chief' in resolver.cluster_spec().as_dict()
    return resolver.task_type == 'worker' and resolver.task_id == 0 and not has_chief


def worker_count(strategy):
    """How many machines (processes) train together."""
    if not is_multi_worker(strategy):
        return 1
    cluster = strategy.cluster_resolver.cluster_spec().as_dict()
    return len(cluster.get('worker', [])) + len(cluster.get('chief', []))


def describe(strategy):
    """One line for the start of a training: replicas, devices, workers."""
    replicas = strategy.num_replicas_in_sync
    if is_multi_worker(strategy):
        resolver = strategy.cluster_resolver
        return (f'Training on {worker_count(strategy)} workers, {replicas} replicas in all '
                f'(this is {resolver.task_type} {resolver.task_id})')
    if replicas == 1:
        return None
    devices = ', '.join(d.rsplit('/device:', 1)[-1] for d in strategy.extended.worker_devices)
    return f'Training on {replicas} replicas ({devices})'


def check_global_batch(strategy, batch_size):
    """``--batch_size`` is the global batch: each replica takes an equal slice of it."""
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f'--batch_size {batch_size} is the global batch and must divide '
                         f'evenly among the {replicas} replicas')


def distribute_batches(strategy, make_dataset, batch_size):
    """An iterator of global batches of ``batch_size``, each replica's slice on its own
    device. ``make_dataset(per_replica_batch, shards, shard)`` builds one worker's pipeline
    over its ``shard`` of ``shards`` shards of the files."""
    def dataset_fn(context):
        return make_dataset(context.get_per_replica_batch_size(batch_size),
                            context.num_input_pipelines, context.input_pipeline_id)
    return iter(strategy.distribute_datasets_from_function(dataset_fn))


def chief_decides(strategy, chief, flag, values):
    """``(whether flag is set on any worker, the chief's values)`` on every worker, in one
    all-reduce; every worker must ask at the same point. So all stop after the same step
    (one worker's Ctrl-C stops the cluster) and take what the chief's clock says: when
    the time is spent, and each step's learning rate."""
    if not is_multi_worker(strategy):
        return flag, tuple(values)
    # The chief's values survive the mean as its share, which divides back out.
    vector = [float(flag), float(chief)] + [float(chief) * value for value in values]
    mean = _all_workers_mean(strategy)(tf.constant(vector, tf.float64)).numpy()
    return bool(mean[0] > 0), tuple(float(value / mean[1]) for value in mean[2:])


def differs_between_workers(strategy, value):
    """Whether the workers hold different values of the number ``value``."""
    if not is_multi_worker(strategy):
        return False
    value = float(value)
    mean, mean_square = _all_workers_mean(strategy)(
        tf.constant([value, value * value], tf.float64)).numpy()
    return mean_square - mean * mean > 1e-6


@functools.cache
def _all_workers_mean(strategy):
    """A compiled all-reduce: the mean over every replica of a vector each worker gives."""
    @tf.function
    def mean(values):
        per_replica = strategy.run(tf.identity, args=(values,))
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)
    return mean


def mixed_precision_policy():
    """The Keras policy of ``--mixed_precision``: float16 with loss scaling on GPUs,
    bfloat16 on the CPU (which has no fast float16 and needs no loss scaling)."""
    return 'mixed_float16' if tf.config.list_logical_devices('GPU') else 'mixed_bfloat16'


def set_precision(policy):
    """Sets the policy every layer built from now on computes in; weights stay float32."""
    keras.mixed_precision.set_global_policy(policy)


def wrap_optimizer(optimizer):
    """float16 gradients underflow: under ``mixed_float16`` the loss is scaled up before
    differentiation and the gradients scaled back (dynamically, skipping overflows)."""
    if keras.mixed_precision.global_policy().name == 'mixed_float16':
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
