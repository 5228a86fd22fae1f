"""Training under tf.distribute: a mirrored step over two logical CPUs is
the single-device step on the same global batch; the reader's shards split the files; the
two-machine command of docs/training.md trains on two localhost processes; resuming under a
strategy;
mixed precision computes in bfloat16/float16, trains the E-flat chord and saves checkpoints
a full-precision network restores; and every bad choice is a one-line error."""
import json
import os
import re
import shlex
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import (
    CORPUS_PARAMS,
    NETWORK,
    ROOT,
    TRAIN,
    build_under,
    checkpoint_numbers,
    communicate_all,
    describe,
    free_ports,
    global_batch,
    make_sine_waves,
    mirrored,
    printed_steps,
    saved_state,
    start_workers,
    write_corpus,
)

from wavenet import WaveNetModel, distribution, mu_law_encode, optimizer_factory
from wavenet.audio_reader import AudioReader
from wavenet.checkpoints import create_checkpoint
from wavenet.params import build_model
from wavenet.training import make_train_step

TRAINING_DOC = os.path.join(ROOT, 'docs', 'training.md')


@pytest.fixture(scope='module')
def corpus(tmp_path_factory):
    root = write_corpus(tmp_path_factory.mktemp('corpus'), speakers=(1, 2, 3))
    (root / 'params.json').write_text(json.dumps(CORPUS_PARAMS))
    return root


@pytest.mark.parametrize('lc, l2, optimizer', [(False, 1e-3, 'adam'), (True, None, 'sgd')])
def test_mirrored_step_equals_the_single_device_step(lc, l2, optimizer):
    batch = global_batch(lc)
    single, single_optimizer = build_under(tf.distribute.get_strategy(), lc=lc, optimizer=optimizer)
    step = make_train_step(single, single_optimizer, l2)
    expected = [step(*batch) for _ in range(3)]

    strategy = mirrored()
    assert strategy.num_replicas_in_sync == 2
    net, net_optimizer = build_under(strategy, lc=lc, optimizer=optimizer)
    np.testing.assert_array_equal(net.trainable_variables[3].numpy(),
                                  build_under(tf.distribute.get_strategy(), lc=lc)[0]
                                  .trainable_variables[3].numpy())
    distributed = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch).repeat())
    replica_batches = iter(distributed)
    first = next(replica_batches)
    # Each replica holds its half of the global batch.
    assert [a.shape[0] for a in strategy.experimental_local_results(first[0])] == [2, 2]
    step = make_train_step(net, net_optimizer, l2, strategy)
    losses = [step(*first)] + [step(*next(replica_batches)) for _ in range(2)]

    for got, want in zip(losses, expected):
        assert set(got) == set(want)
        for name in want:
            np.testing.assert_allclose(float(got[name]), float(want[name]), rtol=1e-6)
    assert float(losses[2]['loss']) < float(losses[0]['loss'])  # it did train
    for got, want in zip(net.trainable_variables, single.trainable_variables):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5, err_msg=got.path)


def test_distributed_batches_give_each_replica_its_slice_of_the_global_batch(corpus):
    reader = AudioReader(str(corpus), 16000, True, receptive_field=9, sample_size=500,
                         silence_threshold=0)
    calls = []

    def make_dataset(batch_size, shards, shard):
        calls.append((batch_size, shards, shard))
        return reader.dataset(batch_size, seed=1, shards=shards, shard=shard)

    batches = distribution.distribute_batches(mirrored(), make_dataset, 4)
    audio, gc_ids = next(batches)
    assert calls == [(2, 1, 0)]  # one worker: one pipeline of per-replica batches
    assert [a.shape[0] for a in mirrored().experimental_local_results(audio)] == [2, 2]
    assert all(int(i) in (1, 2, 3) for ids in gc_ids.values for i in ids)


def test_reader_shards_split_the_files(corpus):
    reader = AudioReader(str(corpus), 16000, True, receptive_field=9, sample_size=None,
                         silence_threshold=0)
    # Each file is one piece (whole clips); its first samples identify it.
    signature = {tuple(np.round(a[9:14], 4)): f for f, a in
                 ((f, np.pad(reader.pieces(f)[0], (0, 0))) for f in reader.files)}
    seen = []
    for shard in range(2):
        pieces = reader.dataset(1, seed=2, shards=2, shard=shard).take(len(reader.files))
        files = {signature[tuple(np.round(a[0, 9:14, 0], 4))] for a, _ in pieces}
        seen.append(files)
    assert seen[0] == set(reader.files[0::2]) and seen[1] == set(reader.files[1::2])


def readme_cluster_commands():
    """docs/training.md's two-machine example: ``(TF_CONFIG, train.py flags)`` per
    machine."""
    with open(TRAINING_DOC) as f:
        lines = [line for line in f if line.startswith('TF_CONFIG=')]
    assert len(lines) == 2, 'docs/training.md shows one command per machine'
    commands = []
    for line in lines:
        words = shlex.split(line)
        assert words[1:3] == ['python', 'train.py'], line
        commands.append((words[0].split('=', 1)[1], words[3:]))
    return commands


def test_the_documented_two_machine_example_trains_on_two_local_processes(corpus, tmp_path):
    ports = free_ports(2)
    processes = []
    for index, (tf_config, flags) in enumerate(readme_cluster_commands()):
        config = json.loads(tf_config)
        assert config['task'] == {'type': 'worker', 'index': index}
        hosts = config['cluster']['worker']
        tf_config = tf_config.replace(hosts[0], f'localhost:{ports[0]}').replace(
            hosts[1], f'localhost:{ports[1]}')
        # Each "machine" has its own working folder (so its own relative logdir) and its
        # own scratch folder; a tiny network and corpus stand in for the demo's.
        machine = tmp_path / f'machine{index}'
        (machine / 'tmp').mkdir(parents=True)
        overrides = [f'--data_dir={corpus}', f'--wavenet_params={corpus}/params.json',
                     '--num_steps=5', '--checkpoint_every=2', '--sample_size=500',
                     '--silence_threshold=0']
        processes.append(subprocess.Popen(
            [sys.executable, TRAIN, *flags, *overrides], cwd=machine, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=dict(os.environ, TF_CONFIG=tf_config, TMPDIR=str(machine / 'tmp'))))
    try:
        outputs = communicate_all(processes, timeout=300)
    finally:
        for p in processes:
            p.kill()
    for p, (_, stderr) in zip(processes, outputs):
        assert p.returncode == 0, stderr
    logdir_flag = next(f for f in readme_cluster_commands()[0][1] if f.startswith('--logdir='))
    logdir = tmp_path / 'machine0' / logdir_flag.split('=', 1)[1]
    assert 'Training on 2 workers, 2 replicas in all (this is worker 0)' in outputs[0][0]
    # Both ran the same five steps with the same cluster-wide losses.
    assert printed_steps(outputs[0][0]) == printed_steps(outputs[1][0])
    assert [s for s, _ in printed_steps(outputs[0][0])] == list(range(5))
    assert checkpoint_numbers(logdir) == [0, 2, 4]
    assert saved_state(str(logdir / 'model.ckpt-4'), 32, 4) == (4, 5)  # the documented 32
    assert (logdir / 'wavenet_params.json').exists()
    assert len([n for n in os.listdir(logdir) if n.startswith('events.')]) == 1
    # The other worker wrote nothing: no logdir, and its scratch checkpoints are gone.
    assert os.listdir(tmp_path / 'machine1') == ['tmp']
    assert os.listdir(tmp_path / 'machine1' / 'tmp') == []


def test_a_lost_worker_stops_the_other_with_a_clear_message(corpus, tmp_path):
    processes = start_workers(corpus, [tmp_path, tmp_path], '--checkpoint_every=20')
    chief, other = processes
    try:
        for line in chief.stdout:
            if line.startswith('step 25 -'):
                other.send_signal(signal.SIGKILL)
                break
        _, stderr = chief.communicate(timeout=120)
    finally:
        for p in processes:
            p.kill()
    assert chief.returncode == 1, stderr
    assert re.fullmatch(r'train\.py: error: another worker stopped answering after step \d+ '
                        r'\(\w+\); stopping\. The last good checkpoint is logdir/model\.ckpt-20\.',
                        stderr.splitlines()[-1]), stderr.splitlines()[-1]


def test_a_stop_signal_to_one_worker_stops_both_after_the_same_step(corpus, tmp_path):
    (tmp_path / '1').mkdir()
    processes = start_workers(corpus, [tmp_path, tmp_path / '1'], '--checkpoint_every=1000')
    chief, other = processes
    try:
        lines = []
        for line in other.stdout:  # Ctrl-C on the worker that is not the chief
            lines.append(line)
            if line.startswith('step 5 -'):
                other.send_signal(signal.SIGINT)
                break
        other_out = ''.join(lines) + other.communicate(timeout=120)[0]
        chief_out, stderr = chief.communicate(timeout=120)
    finally:
        for p in processes:
            p.kill()
    assert chief.returncode == 0 and other.returncode == 0, stderr
    last = printed_steps(chief_out)[-1][0]
    assert printed_steps(other_out)[-1][0] == last >= 5
    assert checkpoint_numbers(tmp_path / 'logdir') == [0, last]
    assert os.listdir(tmp_path / '1') == []


def test_nan_loss_under_a_mirrored_strategy_keeps_the_last_good_checkpoint(train_main, corpus,
                                                                           capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_main([f'--data_dir={corpus}', f'--wavenet_params={corpus}/params.json',
                    '--sample_size=500', '--silence_threshold=0', '--logdir=logdir',
                    '--distribute=mirrored', '--cpu_devices=2', '--batch_size=2',
                    '--optimizer=sgd', '--learning_rate=1e30', '--checkpoint_every=1',
                    '--num_steps=50'])
    assert exit_info.value.code == 1
    message = capsys.readouterr().err.splitlines()[-1]
    match = re.fullmatch(r'train\.py: error: Loss is (NaN|infinite) at step (\d+); stopping\. '
                         r'The last good checkpoint is logdir/model\.ckpt-(\d+)\.', message)
    assert match and int(match.group(3)) == int(match.group(2)) - 1, message
    assert tf.train.latest_checkpoint('logdir') == f'logdir/model.ckpt-{match.group(3)}'


def test_resume_under_a_mirrored_strategy(train_main, corpus, tmp_path, capsys):
    flags = [f'--data_dir={corpus}', f'--wavenet_params={corpus}/params.json',
             '--sample_size=500', '--silence_threshold=0', '--logdir=logdir',
             '--distribute=mirrored', f'--cpu_devices={2}', '--batch_size=2',
             '--checkpoint_every=2']
    train_main([*flags, '--num_steps=3'])
    first = capsys.readouterr().out
    assert 'Training on 2 replicas (CPU:0, CPU:1)' in first
    assert [s for s, _ in printed_steps(first)] == [0, 1, 2]
    weights_at_2 = tf.train.load_checkpoint('logdir/model.ckpt-2')
    train_main([*flags, '--num_steps=5'])
    second = capsys.readouterr().out
    assert 'Global step was: 2' in second
    assert [s for s, _ in printed_steps(second)] == [3, 4]
    assert checkpoint_numbers(tmp_path / 'logdir') == [0, 2, 4]
    assert saved_state('logdir/model.ckpt-4', None, None) == (4, 5)
    # The resumed training started from the saved weights: one more step moves them
    # only a little, where a fresh start would differ by whole initial values.
    weights_at_4 = tf.train.load_checkpoint('logdir/model.ckpt-4')
    name = 'model/layer0/filter/.ATTRIBUTES/VARIABLE_VALUE'
    change = np.abs(weights_at_4.get_tensor(name) - weights_at_2.get_tensor(name)).max()
    assert 0 < change < 0.05


@pytest.mark.parametrize('flags, env, message', [
    (['--distribute=mirrored', '--batch_size=3'], {},
     '--batch_size 3 is the global batch and must divide evenly among the 2 replicas'),
    (['--distribute=everywhere'], {}, "argument --distribute: invalid choice: 'everywhere'"),
    (['--cpu_devices=0'], {}, "argument --cpu_devices: must be a positive int, got '0'"),
    (['--cpu_devices=3'], {}, '--cpu_devices 3: TensorFlow already started with 2 CPU'),
    (['--distribute=multi_worker'], {}, '--distribute multi_worker: TF_CONFIG is not set'),
    ([], {'TF_CONFIG': '{"cluster": '}, 'TF_CONFIG: expected {"cluster": {"worker": [...]}'),
    ([], {'TF_CONFIG': json.dumps({'cluster': {'worker': ['localhost:1']},
                                   'task': {'type': 'worker', 'index': 3}})},
     'TF_CONFIG: task worker 3 is not in its cluster'),
])
def test_bad_distribution_choices_are_one_line_errors(train_main, corpus, tmp_path, capsys,
                                                      monkeypatch, flags, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_info:
        train_main([f'--data_dir={corpus}', f'--wavenet_params={corpus}/params.json',
                    '--logdir=logdir', '--cpu_devices=2', *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f'train.py: error: {message}') and err.count('\n') == 1, err
    assert os.listdir(tmp_path) == []


def test_mixed_precision_computes_in_half_precision_with_float32_weights(mixed_precision):
    audio, _ = make_sine_waves(False)
    codes = mu_law_encode(audio, NETWORK['quantization_channels'])
    logits = {}
    for policy, dtype in (('float32', tf.float32), ('mixed_bfloat16', tf.bfloat16),
                          ('mixed_float16', tf.float16)):
        mixed_precision(policy)
        keras.utils.set_random_seed(1)
        net = WaveNetModel(**dict(NETWORK, use_biases=True))
        assert all(v.dtype == 'float32' for v in net.variables)
        assert net.loss(audio[..., None]).dtype == tf.float32
        logits[policy] = net(net.encode_codes(codes))
        assert logits[policy].dtype == dtype
    # bfloat16 keeps 8 bits of mantissa, float16 11: the logits differ from float32's by
    # about that much (the mean loss can hide it: its errors average out).
    def difference(policy):
        return float(tf.reduce_max(tf.abs(tf.cast(logits[policy], tf.float32) -
                                          logits['float32'])))
    assert 1e-3 < difference('mixed_bfloat16') < 0.2
    assert 1e-5 < difference('mixed_float16') < difference('mixed_bfloat16') / 4


def test_float16_training_scales_the_loss_and_saves_a_plain_optimizer(mixed_precision, tmp_path):
    mixed_precision('mixed_float16')
    net, _ = build_under(tf.distribute.get_strategy())
    optimizer = distribution.wrap_optimizer(optimizer_factory['adam'](1e-2, 0.9))
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    checkpoint = create_checkpoint(net, optimizer)
    step = make_train_step(net, optimizer)
    batch = global_batch()
    losses = [float(step(*batch)['loss']) for _ in range(5)]
    assert losses[-1] < losses[0]
    prefix = checkpoint.save(str(tmp_path / 'ckpt'))
    # A full-precision network and plain optimizer restore every value of it.
    mixed_precision('float32')
    plain, plain_optimizer = build_under(tf.distribute.get_strategy())
    create_checkpoint(plain, plain_optimizer).restore(prefix).assert_existing_objects_matched()
    assert int(plain_optimizer.iterations.numpy()) == 5
    for got, want in zip(plain.trainable_variables, net.trainable_variables):
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_mixed_precision_learns_the_chord(mixed_precision):
    """The end-to-end test's chord, trained in bfloat16 to the same loss threshold; a
    float32 network given the same weights (the checkpoint interchange) has learned it too."""
    mixed_precision(distribution.mixed_precision_policy())
    assert keras.mixed_precision.global_policy().name == 'mixed_bfloat16'  # no GPU here
    net = WaveNetModel(**NETWORK)
    audio, _ = make_sine_waves(False)
    audio = tf.constant(np.pad(audio, ((0, 0), (net.receptive_field - 1, 0)))[..., None])
    step = make_train_step(net, optimizer_factory['sgd'](learning_rate=0.02, momentum=0.95))
    initial_loss = float(net.loss(audio))
    for _ in range(400):
        loss = float(step(audio)['loss'])
    assert initial_loss > 0.1 and loss < 0.1 and initial_loss / loss > 50

    mixed_precision('float32')
    plain = WaveNetModel(**NETWORK)
    for target, source in zip(plain.variables, net.variables):
        target.assign(source)
    plain_loss = float(plain.loss(audio))
    assert plain_loss < 0.1 and abs(plain_loss - loss) < 0.5 * loss


def test_choose_strategy_auto(monkeypatch):
    monkeypatch.delenv('TF_CONFIG', raising=False)
    # No GPU here: one device unless the CPU is split.
    assert distribution.choose_strategy('auto').num_replicas_in_sync == 1
    assert distribution.choose_strategy('none') is tf.distribute.get_strategy()
    assert distribution.choose_strategy('auto', cpu_devices=2).num_replicas_in_sync == 2
    assert distribution.is_chief(tf.distribute.get_strategy())
    assert distribution.describe(tf.distribute.get_strategy()) is None


def test_params_and_build_model_do_not_depend_on_the_strategy():
    # The same description builds the same network under a strategy's scope.
    with mirrored().scope():
        net = build_model(describe(CORPUS_PARAMS))
    assert isinstance(net.trainable_variables[0].value, tf.distribute.DistributedValues)
