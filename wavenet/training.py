"""Training: the compiled step, checkpoints that never lose work, and the loop."""
import contextlib
import dataclasses
import glob
import math
import os
import shutil
import signal
import threading
import time

import numpy as np
import tensorflow as tf

from . import distribution
from .cli import DiskFull, disk_full, native_stderr_filtered

# With --store_metadata, one step in this many is profiled (as the original).
PROFILE_EVERY = 50


def make_train_step(net, optimizer, l2_regularization_strength=None, strategy=None,
                    input_noise=0.0, average=None, jit_compile=False):
    """A ``tf.function`` ``(audio [B, T, 1], gc_ids [B] or None, frames [B, F, C] or None)
    -> losses`` that updates ``net`` in place (``frames``: a vocoder's features).
    ``losses`` has ``loss`` and, with L2, ``l2_loss`` and ``total_loss``; ``total_loss``
    (or ``loss``) is what was minimized.

    Under a ``strategy`` (whose scope built ``net`` and ``optimizer``) the inputs are
    distributed values, each replica's slice of the global batch, and the losses those of
    the global batch. ``input_noise``: see ``WaveNetModel.loss``. ``average`` (an
    ``averaging.WeightAverage``) follows the weights after every step.

    ``jit_compile``: each replica's step (loss, gradients and update) runs as one XLA
    executable, as Keras compiles a replica's step; XLA compiles it again for every new
    shape of the inputs, so its pieces should be of one length."""
    strategy = strategy or tf.distribute.get_strategy()

    def replica_step(audio, gc_ids, frames):
        # Each replica's mean over its equal slice, divided by the number of replicas, sums
        # in the gradients' all-reduce to the mean over the global batch. L2 is the same
        # on every replica, so it is divided likewise and counted once.
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        with tf.GradientTape() as tape:
            loss = net.loss(audio, gc_ids, local_condition_batch=frames,
                            input_noise=input_noise)
            losses = {'loss': loss}
            if l2_regularization_strength:
                losses['l2_loss'] = net.l2_loss()
                losses['total_loss'] = loss + l2_regularization_strength * losses['l2_loss']
            losses = {name: value / replicas for name, value in losses.items()}
            # Under float16, the loss scaled up so that small gradients do not underflow.
            objective = optimizer.scale_loss(losses.get('total_loss', losses['loss']))
        variables = net.trainable_variables
        gradients = tape.gradient(objective, variables)
        # The last layer's residual output feeds nothing (as in the original), so its
        # 'dense' weights have no gradient unless L2 reaches them.
        optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables)
                                   if g is not None])
        return losses

    if jit_compile:
        replica_step = tf.function(replica_step, jit_compile=True)

    @tf.function(reduce_retracing=True)
    def train_step(audio, gc_ids=None, frames=None):
        losses = strategy.run(replica_step, args=(audio, gc_ids, frames))
        if average is not None:
            average.update(net)
        return {name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in losses.items()}

    return train_step


JIT_CHOICES = ('auto', 'true', 'false')
# XLA's fusions pay where a step is many small operations; a network of more weights than
# this spends its step in large products, which XLA does not speed up on a CPU
# (bench/compiled_step.py measures both sides).
COMPILED_BELOW_WEIGHTS = 1_000_000


def compile_step(choice, net, strategy, sample_size):
    """``(compile, note)``: whether the training step is XLA-compiled under
    ``--jit_compile`` ``choice``, and a line saying why not when it was asked for and is
    not. ``auto`` compiles on a CPU when ``net`` is small and the pieces are of one length
    (``sample_size``; whole clips would compile again for every clip length)."""
    if strategy.num_replicas_in_sync > 1:
        # XLA runs a replica's step on the first device and cannot reach the variables
        # of the others (TensorFlow's known issue for variables on another device).
        return False, (None if choice != 'true' else
                       '--jit_compile=true: a step split over several replicas runs '
                       'uncompiled (XLA cannot reach the other devices\' variables)')
    if choice != 'auto':
        return choice == 'true', None
    if tf.config.list_logical_devices('GPU') or not sample_size:
        return False, None
    return net.count_params() < COMPILED_BELOW_WEIGHTS, None


def make_validation(net, pieces):
    """A callable giving the mean loss of ``net`` over held-out ``pieces`` (each
    ``(audio [1, T, 1], gc_ids or None, frames or None)``), every piece weighing the same."""
    @tf.function(reduce_retracing=True)
    def piece_loss(audio, gc_ids=None, frames=None):
        return net.loss(audio, gc_ids, local_condition_batch=frames)

    def validation_loss():
        return float(np.mean([float(piece_loss(*piece)) for piece in pieces]))
    return validation_loss


class Stopwatch:
    """Where a training run's wall time goes: seconds per part (``PARTS``), counted by
    ``with stopwatch.timing(part)``. A timing inside another counts for its own part
    alone (the quality measures inside the samples, say); what no timing covers is
    ``other``."""
    PARTS = ('start-up', 'compiling', 'steps', 'input', 'validation', 'samples',
             'quality measures', 'checkpoints')

    def __init__(self, started=None):
        self.started = time.perf_counter() if started is None else started
        self.seconds = dict.fromkeys(self.PARTS, 0.0)
        self.last = dict.fromkeys(self.PARTS, 0.0)  # each part's latest timing, whole
        self._open = []  # the parts being timed, innermost last, with their start times

    @contextlib.contextmanager
    def timing(self, part):
        start = time.perf_counter()
        self._open.append(part)
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self._open.pop()
            self.seconds[part] += elapsed
            self.last[part] = elapsed
            if self._open:
                self.seconds[self._open[-1]] -= elapsed

    def wall(self):
        return time.perf_counter() - self.started

    def breakdown(self):
        """``{part: seconds}`` of every part and ``other``, summing to the wall time."""
        wall = self.wall()
        return {**self.seconds, 'other': max(wall - sum(self.seconds.values()), 0.0)}

    def line(self):
        """One line: the wall time and each part's seconds and share of it."""
        wall = self.wall()
        parts = ', '.join(f'{part} {seconds:.0f} s ({100 * seconds / wall:.0f} %)'
                          for part, seconds in self.breakdown().items() if seconds >= 0.5)
        return f'Wall time {wall:.0f} s: {parts}'

    def write(self, writer, step):
        """The breakdown as ``time/<part>`` scalars (seconds) and ``time/wall``."""
        with writer.as_default(step=step):
            tf.summary.scalar('time/wall', self.wall())
            for part, seconds in self.breakdown().items():
                tf.summary.scalar(f'time/{part.replace(" ", "_")}', seconds)


SCHEDULES = ('constant', 'cosine', 'linear')
# A decaying schedule ends at this fraction of the initial rate, not at zero: its last
# steps still learn, and the weight average follows them.
SCHEDULE_FLOOR = 1 / 30


def learning_rate_schedule(name, initial):
    """The learning rate as a function of the training's progress, the fraction of its
    budget spent (``Budget.progress``: 0 at its start, 1 at its last step): ``constant``
    (the original's), or from ``initial`` down to ``SCHEDULE_FLOOR * initial`` along half
    a cosine (``cosine``) or a straight line (``linear``, as Li, Yumer and Ramanan's
    budgeted training). A function of the progress alone, so a resumed training takes up
    the same curve."""
    if name == 'constant':
        return lambda progress: initial
    shape = {'cosine': lambda done: 0.5 * (1 + math.cos(math.pi * done)),
             'linear': lambda done: 1 - done}[name]

    def rate(progress):
        return initial * (SCHEDULE_FLOOR + (1 - SCHEDULE_FLOOR)
                          * shape(min(max(progress, 0.0), 1.0)))
    return rate


@dataclasses.dataclass(frozen=True)
class Budget:
    """What a training may spend: its steps up to ``num_steps`` and, with ``seconds``, that
    much wall time in all, counted from the start of each run's process (start-up,
    compiling, validation, samples and checkpoints included, so the minutes promised are
    the minutes a user waits), ``spent_before`` of them by the earlier runs of its logdir.
    Whichever runs out first ends the training, and the schedule runs over it."""
    num_steps: int
    seconds: float | None = None
    spent_before: float = 0.0

    def spent(self, clock):
        """The seconds spent so far, this run's by ``clock`` (a ``Stopwatch``)."""
        return self.spent_before + clock.wall()

    def progress(self, step, spent, reserve=0.0):
        """The fraction of the budget spent (0 to 1) as step ``step`` starts, ``spent``
        seconds in: the larger of the steps' share and the time's, whose end is
        ``reserve`` seconds early (kept for the last checkpoint and samples), so the
        schedule reaches its floor at the last step however fast the machine is."""
        done = step / max(self.num_steps - 1, 1)
        if self.seconds is not None:
            done = max(done, spent / max(self.seconds - reserve, 1e-9))
        return min(done, 1.0)

    def out_of_time(self, spent, reserve=0.0):
        """Whether a step that ended ``spent`` seconds in must be the last one: the
        ``reserve`` for the last checkpoint and samples would not fit after another."""
        return self.seconds is not None and spent + reserve >= self.seconds


class TrainingDiverged(RuntimeError):
    """The loss (or a weight) stopped being finite; nothing after the last good checkpoint
    was saved."""


class WorkerLost(RuntimeError):
    """Another worker of a multi-worker training stopped answering."""


def save(manager, step, chief=True, seconds=None):
    """Writes ``model.ckpt-<step>``, unless a weight is no longer finite, with the wall
    ``seconds`` its trainings have spent (``Budget.spent``) when given. In a cluster
    every worker saves (saving may need them all), the others into a scratch folder."""
    net = manager.checkpoint.model
    if not all(np.isfinite(v.numpy()).all() for v in net.trainable_variables):
        raise TrainingDiverged(f'A weight is not finite after step {step}; stopping. '
                               + last_good(manager))
    if chief:
        print(f'Storing checkpoint to {manager.directory} ...', end='', flush=True)
    manager.checkpoint.step.assign(step)
    if seconds is not None:
        manager.checkpoint.seconds.assign(seconds)
    try:
        manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as e:
        if not disk_full(e, manager.directory):
            raise
        if chief:
            print()
        _remove_unfinished(manager, step)
        raise DiskFull(f'no space left on device saving a checkpoint of step {step} in '
                       f'{manager.directory}; stopping. ' + last_good(manager)) from None
    if chief:
        print(' Done.')


def _remove_unfinished(manager, step):
    """The files of a save of ``step`` that never finished (TensorFlow's ``_temp``
    folder of shards, a half-merged index or data file), unless the state names them."""
    prefix = os.path.join(manager.directory, f'model.ckpt-{step}')
    if prefix in manager.checkpoints:
        return
    for path in glob.glob(glob.escape(prefix) + '_temp*') + glob.glob(glob.escape(prefix)
                                                                       + '.*'):
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(path)


def last_good(manager):
    if manager.latest_checkpoint is None:
        return 'No checkpoint was saved.'
    return f'The last good checkpoint is {manager.latest_checkpoint}.'


@contextlib.contextmanager
def stop_requests():
    """Turns Ctrl-C and SIGTERM into a request to stop after the step in flight (an
    ``Event``), so the checkpoint saved on the way out matches the step it is named after.
    A second Ctrl-C interrupts at once."""
    requested = threading.Event()

    def request(signum, frame):
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()

    previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# What a collective raises when another worker died or cannot be reached.
_LOST_WORKER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                       tf.errors.CancelledError, tf.errors.AbortedError)


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """What a training run does, and when.

    ``budget`` (a ``Budget``) says when it ends. ``validation`` (of ``make_validation``)
    runs with every periodic checkpoint: its loss is printed and logged as
    ``validation_loss``. ``sampler`` (a ``summaries.Sampler``) writes generated audio every
    ``sample_every`` steps and after the last step. ``learning_rate`` (a function of the
    budget's progress, see ``learning_rate_schedule``) sets the optimizer's rate before
    every step; ``None`` leaves it as it is. ``store_metadata`` profiles one step in
    ``PROFILE_EVERY``."""
    first_step: int
    budget: Budget
    checkpoint_every: int
    gc_enabled: bool = False
    histograms: bool = False
    store_metadata: bool = False
    validation: object = None
    sampler: object = None
    sample_every: int = 0
    learning_rate: object = None

    @property
    def num_steps(self):
        return self.budget.num_steps


# What a training's process takes after its last checkpoint and samples (the last events
# written, the interpreter's exit), kept in a time budget's reserve.
ENDING_SECONDS = 2.0


def train(train_step, batches, manager, writer, plan, strategy=None, chief=True,
          stopwatch=None):
    """Runs steps from ``plan.first_step`` until the plan's budget is spent (its steps,
    ``plan.num_steps - 1`` the last, or its time) on ``batches`` (an iterator of
    ``(audio, gc_ids)``, or ``(audio, gc_ids, frames)`` for a vocoder), logging to
    ``writer`` and saving through ``manager`` every ``plan.checkpoint_every`` steps, on the
    last step and when stopped. A non-finite loss raises ``TrainingDiverged`` without
    saving, so the last good checkpoint stays newest.

    Under a multi-worker ``strategy`` every worker runs this loop in step: a stop request
    on any of them stops all after the same step, the chief's clock decides for all when
    the time is spent and what each step's learning rate is, and only the ``chief``
    prints where checkpoints go and profiles. A worker that stops answering raises
    ``WorkerLost``.

    ``stopwatch`` (a ``Stopwatch``, started with the process) counts where the time goes;
    the chief prints its line and logs it as ``time/*`` when the loop ends, however."""
    strategy = strategy or tf.distribute.get_strategy()
    clock = stopwatch or Stopwatch()
    clock.seconds['start-up'] += clock.wall() - sum(clock.seconds.values())
    spec = getattr(batches, 'element_spec', None)
    if spec is not None:
        # One graph for every piece length: a distributed batch's type does not generalize
        # over shapes as a tensor's does, so each new length would trace the step again.
        audio_spec, gc_spec, *frames_spec = spec
        with clock.timing('compiling'):
            train_step = train_step.get_concrete_function(
                audio_spec, gc_spec if plan.gc_enabled else None, next(iter(frames_spec), None))
    completed = saved = plan.first_step - 1
    healthy = True

    def checkpoint(step):
        with clock.timing('checkpoints'):
            save(manager, step, chief, plan.budget.spent(clock))

    try:
        with stop_requests() as stop:
            _, out_of_time, progress = _take_stock(plan, strategy, chief, clock,
                                                   completed, False)
            if out_of_time and plan.first_step > 0 and chief:
                print(f'{_budget(plan)} was spent by the earlier trainings in '
                      f'{manager.directory}: no step to take.')
            steps = range(plan.first_step, plan.num_steps)
            for step in steps if not (out_of_time and plan.first_step > 0) else ():
                # The first step of a run traces the step and has XLA compile it.
                part = 'compiling' if step == plan.first_step else 'steps'
                if plan.learning_rate is not None:
                    manager.checkpoint.optimizer.learning_rate.assign(
                        plan.learning_rate(progress))
                _step(train_step, batches, manager, writer, plan, step, chief, clock, part)
                completed = step
                if step % plan.checkpoint_every == 0:
                    checkpoint(step)
                    saved = step
                    with clock.timing('validation'):
                        _validate(plan.validation, writer, step)
                sampled = plan.sampler is not None and step % plan.sample_every == 0
                if sampled:
                    with clock.timing('samples'):
                        plan.sampler(step, writer, clock)
                requested, out_of_time, progress = _take_stock(plan, strategy, chief, clock,
                                                               step, stop.is_set())
                if out_of_time and chief:
                    print(_spent_line(plan, step, clock))
                last = out_of_time or step == plan.num_steps - 1
                if plan.sampler is not None and last and not sampled:
                    with clock.timing('samples'):
                        plan.sampler(step, writer, clock)
                if requested or out_of_time:
                    break
    except KeyboardInterrupt:
        print()
    except (TrainingDiverged, DiskFull):
        healthy = False  # the last good checkpoint must stay newest
        raise
    except _LOST_WORKER_ERRORS as e:
        # The others cannot join a last checkpoint: the last one saved stands.
        healthy = False
        raise WorkerLost(f'another worker stopped answering after step {completed} '
                         f'({type(e).__name__}); stopping. ' + last_good(manager)) from None
    except tf.errors.OpError as e:  # the TensorBoard events' disk filled
        if not disk_full(e, manager.directory):
            raise
        healthy = False
        raise DiskFull(f'no space left on device writing TensorBoard events in '
                       f'{manager.directory} after step {completed}; stopping. '
                       + last_good(manager)) from None
    finally:
        try:
            if healthy and completed > saved:
                checkpoint(completed)
        finally:
            _finish(clock, writer, completed, chief)


def _take_stock(plan, strategy, chief, clock, step, requested):
    """``(stop requested, out of time, progress)`` after step ``step``: whether any worker
    asked to stop, whether the time budget is spent, and the budget's progress as the next
    step starts. The chief's clock decides the last two for every worker, so that all
    stop after the same step and step with the same learning rate."""
    spent = plan.budget.spent(clock)
    # What the end will cost: the last checkpoint and samples take about what the
    # latest ones took.
    reserve = ENDING_SECONDS + clock.last['checkpoints'] + (
        clock.last['samples'] if plan.sampler is not None else 0.0)
    requested, (out_of_time, progress) = distribution.chief_decides(
        strategy, chief, requested, (float(plan.budget.out_of_time(spent, reserve)),
                                     plan.budget.progress(step + 1, spent, reserve)))
    return requested, out_of_time > 0.5, progress


def _budget(plan):
    return f'The budget of {plan.budget.seconds / 60:g} minutes'


def _spent_line(plan, step, clock):
    """The line that ends a training by the clock: how many steps the minutes bought."""
    if step == plan.first_step == 0:
        return f'{_budget(plan)} was spent before the first step ended: step 0 is the only one.'
    run = (f'this run: steps {plan.first_step} to {step}, {clock.wall() / 60:.1f} minutes'
           if plan.first_step else f'{clock.wall() / 60:.1f} minutes to its last step')
    return f'{_budget(plan)} is spent: it bought {step + 1} steps ({run}).'


def _finish(clock, writer, step, chief):
    """The line of where the time went, and the last events (none on a full disk)."""
    if chief:
        print(clock.line())
    with contextlib.suppress(tf.errors.OpError):
        if chief:
            clock.write(writer, max(step, 0))
        writer.flush()


def _step(train_step, batches, manager, writer, plan, step, chief, clock, part):
    """Step ``step``: its batch, its update, its line and summaries."""
    start_time = time.perf_counter()
    with clock.timing('input'):
        batch = next(batches, None)
    if batch is None:
        raise ValueError('no usable audio: every file in the corpus was skipped')
    audio, gc_ids, *frames = batch
    profiling = chief and plan.store_metadata and step % PROFILE_EVERY == 0
    if profiling:
        print('Storing metadata')
        tf.profiler.experimental.start(manager.directory)
    # Compiling reads the persistent cache, of which XLA's C++ logs a false alarm.
    with clock.timing(part), (native_stderr_filtered() if part == 'compiling' else
                              contextlib.nullcontext()):
        losses = train_step(audio, gc_ids if plan.gc_enabled else None,
                            next(iter(frames), None))
        objective = float(losses.get('total_loss', losses['loss']))
    if profiling:
        tf.profiler.experimental.stop()
    if not math.isfinite(objective):
        raise TrainingDiverged(f'Loss is {"NaN" if math.isnan(objective) else "infinite"} at '
                               f'step {step}; stopping. ' + last_good(manager))
    duration = time.perf_counter() - start_time
    print(f'step {step:d} - loss = {objective:.3f}, ({duration:.3f} sec/step)')
    with writer.as_default(step=step):
        for name, value in losses.items():
            tf.summary.scalar(name, value)
        if plan.histograms:
            manager.checkpoint.model.write_histograms(step)


def _validate(validation, writer, step):
    if validation is not None:
        validation_loss = validation()
        print(f'step {step:d} - validation_loss = {validation_loss:.3f}')
        with writer.as_default(step=step):
            tf.summary.scalar('validation_loss', validation_loss)
