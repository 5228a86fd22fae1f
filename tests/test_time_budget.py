"""Training by the clock (--max_minutes): the schedules as functions of the budget's
progress, the stop after the first step past the budget, the minutes kept in the
checkpoint for a resumed training, a budget shorter than one step, and the replicas and
workers of one training stopping together at the chief's word."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    ROOT,
    FakeClock,
    build_under,
    checkpoint_numbers,
    communicate_all,
    printed_steps,
    start_workers,
    train_flags,
)

from wavenet import training
from wavenet.checkpoints import create_checkpoint, restore_training
from wavenet.training import (
    ENDING_SECONDS,
    SCHEDULE_FLOOR,
    Budget,
    Stopwatch,
    TrainingPlan,
    learning_rate_schedule,
)

RATE = 0.01


@pytest.mark.parametrize('progress', [0.0, 0.1, 0.25, 0.5, 0.9, 1.0, 1.5])
def test_the_schedules_rates_at_given_fractions_of_the_budget(progress):
    done = min(progress, 1.0)
    floor = RATE * SCHEDULE_FLOOR
    assert learning_rate_schedule('constant', RATE)(progress) == RATE
    assert learning_rate_schedule('linear', RATE)(progress) == pytest.approx(
        RATE - (RATE - floor) * done)
    assert learning_rate_schedule('cosine', RATE)(progress) == pytest.approx(
        floor + (RATE - floor) * (1 + np.cos(np.pi * done)) / 2)


def test_the_progress_is_the_larger_share_of_steps_and_of_time():
    budget = Budget(num_steps=101, seconds=600.0, spent_before=100.0)
    assert budget.progress(step=10, spent=60.0) == pytest.approx(0.1)  # the steps'
    assert budget.progress(step=10, spent=300.0) == pytest.approx(0.5)  # the time's
    # The reserve for the last checkpoint and samples ends the time's share early.
    assert budget.progress(step=10, spent=300.0, reserve=100.0) == pytest.approx(0.6)
    assert budget.progress(step=100, spent=0.0) == budget.progress(step=0, spent=900.0) == 1.0
    assert not budget.out_of_time(spent=549.0, reserve=50.0)
    assert budget.out_of_time(spent=550.0, reserve=50.0)
    assert Budget(num_steps=5).progress(step=2, spent=1e9) == 0.5  # steps alone
    assert not Budget(num_steps=5).out_of_time(spent=1e9, reserve=1e9)


class Run:
    """``training.train`` of a small network on a fake clock: start-up takes ``startup``
    seconds, every step ``step_seconds``, and checkpoints and samples no time; the
    learning rate of every step is kept (``rates``)."""

    def __init__(self, logdir, monkeypatch, startup=5.0, step_seconds=10.0):
        self.clock = FakeClock(0.0)
        monkeypatch.setattr(training.time, 'perf_counter', self.clock)
        self.net, self.optimizer = build_under(tf.distribute.get_strategy(), gc=False)
        self.checkpoint = create_checkpoint(self.net, self.optimizer)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(logdir), 10,
                                                  checkpoint_name='model.ckpt')
        self.startup, self.step_seconds, self.rates = startup, step_seconds, []

    def step(self, audio, gc_ids, frames):
        self.rates.append(float(self.optimizer.learning_rate))
        self.clock.now += self.step_seconds
        return {'loss': tf.constant(1.0)}

    def __call__(self, budget, first_step=0, schedule='linear'):
        stopwatch = Stopwatch(started=self.clock.now)
        self.clock.now += self.startup
        plan = TrainingPlan(first_step=first_step, budget=budget, checkpoint_every=1000,
                            learning_rate=learning_rate_schedule(schedule, RATE))
        batches = iter(lambda: (np.zeros([1, 100, 1], np.float32), None), None)
        training.train(self.step, batches, self.manager, tf.summary.create_noop_writer(),
                       plan, stopwatch=stopwatch)


def linear_rate(spent, seconds):
    """The linear schedule's rate ``spent`` seconds into a budget of ``seconds``, its
    reserve the ending's alone (checkpoints take no time on the fake clock)."""
    done = min(spent / (seconds - ENDING_SECONDS), 1.0)
    return RATE * (1 - (1 - SCHEDULE_FLOOR) * done)


def test_training_stops_after_the_first_step_past_its_budget(tmp_path, monkeypatch, capsys):
    """Start-up 5 s and steps of 10 s in a budget of 60 s (the ending's reserve counted):
    step 5 is the first to end past it, at 65 s. It is the last: saved, its minutes kept
    in its checkpoint; every step's rate follows the time spent when it started."""
    run = Run(tmp_path, monkeypatch)
    run(Budget(num_steps=1000, seconds=60.0))
    assert checkpoint_numbers(tmp_path) == [0, 5]
    assert run.rates == pytest.approx([linear_rate(5 + 10 * s, 60.0) for s in range(6)])
    assert tf.train.load_variable(str(tmp_path / 'model.ckpt-5'),
                                  'seconds/.ATTRIBUTES/VARIABLE_VALUE') == 65.0
    assert 'The budget of 1 minutes is spent: it bought 6 steps' in capsys.readouterr().out


def test_a_resumed_training_continues_the_budget_where_it_stopped(tmp_path, monkeypatch,
                                                                  capsys):
    """Three steps (--num_steps 3) of a 120 s budget: 35 s spent, kept in the checkpoint.
    Resumed in a new process with --num_steps 100, the schedule goes on from 35 s and the
    budget ends after 120 s in all."""
    first = Run(tmp_path, monkeypatch)
    first(Budget(num_steps=3, seconds=120.0))
    assert checkpoint_numbers(tmp_path) == [0, 2]

    resumed = Run(tmp_path, monkeypatch)
    step = restore_training(resumed.checkpoint, str(tmp_path))
    assert (step, float(resumed.checkpoint.seconds)) == (2, 35.0)
    resumed(Budget(num_steps=100, seconds=120.0, spent_before=35.0), first_step=3)
    # Its start-up counts too: step 3 starts 40 s in, step 10 ends at 120 s.
    assert resumed.rates == pytest.approx([linear_rate(40 + 10 * s, 120.0)
                                           for s in range(8)])
    assert checkpoint_numbers(tmp_path) == [0, 2, 10]
    out = capsys.readouterr().out
    assert 'it bought 11 steps (this run: steps 3 to 10' in out

    # The budget spent, a third run takes no step and says why.
    again = Run(tmp_path, monkeypatch)
    restore_training(again.checkpoint, str(tmp_path))
    again(Budget(num_steps=100, seconds=120.0, spent_before=float(again.checkpoint.seconds)),
          first_step=11)
    assert again.rates == [] and checkpoint_numbers(tmp_path) == [0, 2, 10]
    assert 'was spent by the earlier trainings' in capsys.readouterr().out


def test_a_budget_shorter_than_the_first_step_still_saves_that_step(tmp_path, monkeypatch,
                                                                    capsys):
    run = Run(tmp_path, monkeypatch, startup=20.0)
    run(Budget(num_steps=1000, seconds=6.0))
    assert len(run.rates) == 1 and checkpoint_numbers(tmp_path) == [0]
    assert 'The budget of 0.1 minutes was spent before the first step ended: step 0 is ' \
        'the only one.' in capsys.readouterr().out


def test_the_replicas_of_a_mirrored_training_stop_together_by_the_clock(train_main, corpus,
                                                                         tmp_path, capsys):
    train_main(train_flags(corpus, '--logdir=logdir', '--distribute=mirrored',
                           '--batch_size=2', '--checkpoint_every=1000000',
                           '--max_minutes=0.2', '--learning_rate_schedule=cosine'))
    out = capsys.readouterr().out
    assert 'Training on 2 replicas' in out
    last = printed_steps(out)[-1][0]
    assert last > 0 and f'it bought {last + 1} steps' in out
    assert checkpoint_numbers(tmp_path / 'logdir') == sorted({0, last})
    # The cosine schedule ended at its floor: the last step's rate, kept in its checkpoint.
    saved = tf.train.load_variable(str(tmp_path / 'logdir' / f'model.ckpt-{last}'),
                                   'optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE')
    assert saved == pytest.approx(1e-3 * SCHEDULE_FLOOR, rel=0.05)


def test_the_workers_of_a_training_stop_together_at_the_chiefs_word(corpus, tmp_path):
    """Each worker given another budget: the chief's (worker 0's) decides for both."""
    (tmp_path / '1').mkdir()
    # The chief's budget outlasts the start-up of two processes on a machine that runs the
    # rest of the suite beside them, so that both take steps before it is spent.
    processes = start_workers(corpus, [tmp_path, tmp_path / '1'], '--checkpoint_every=1000000',
                              worker_flags=(['--max_minutes=0.75'], ['--max_minutes=0.01']))
    try:
        outputs = communicate_all(processes, timeout=240)
    finally:
        for p in processes:
            p.kill()
    for p, (_, stderr) in zip(processes, outputs):
        assert p.returncode == 0, stderr
    chief_out, other_out = outputs[0][0], outputs[1][0]
    last = printed_steps(chief_out)[-1][0]
    assert last > 0 and printed_steps(other_out)[-1][0] == last
    assert 'The budget of 0.75 minutes is spent' in chief_out
    assert checkpoint_numbers(tmp_path / 'logdir') == [0, last]
    assert os.listdir(tmp_path / '1') == []


@pytest.mark.parametrize('before, counted', [(1.5, True), (6.0, False)])
def test_the_budget_counts_the_interpreters_start_up(before, counted):
    # The command's `time` counts from the process's start, before train.py's first line;
    # a notebook that imports the tool long after it started is not charged its age.
    # How long before the import the budget starts: not the import's own time, which on
    # a busy machine can exceed the sleep.
    script = (f'import time; time.sleep({before}); imported = time.perf_counter(); '
              'import wavenet.train as tool; print(imported - tool.STARTED)')
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                            cwd=ROOT, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
    charged = float(result.stdout)
    assert (charged >= before) == counted and charged < before + 20
    assert counted or charged < 0  # the budget starts with the import
