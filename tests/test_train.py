"""train.py on a tiny corpus: checkpoints and events, resuming, restoring elsewhere, one-line
errors, stopping on a signal, and a NaN loss that leaves the last good checkpoint newest."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow as tf
from helpers import (
    CORPUS_PARAMS,
    GC_CHANNELS,
    OPTIONAL_DEFAULTS,
    ROOT,
    TRAIN,
    checkpoint_numbers,
    describe,
    printed_steps,
    run_generate,
    run_train,
    saved_state,
    train_flags,
    write_corpus,
)

from wavenet.audio_reader import cut_pieces, load_audio
from wavenet.params import build_model
from wavenet.training import Stopwatch


def events(logdir):
    """``{tag: {step: value}}`` of the scalars, and the set of histogram tags, in ``logdir``."""
    scalars, histograms = {}, set()
    for name in os.listdir(logdir):
        if not name.startswith('events.out.tfevents'):
            continue
        for record in tf.data.TFRecordDataset(os.path.join(logdir, name)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == 'scalars':
                    array = tf.make_ndarray(value.tensor)
                    scalars.setdefault(value.tag, {})[event.step] = float(array)
                elif plugin == 'histograms':
                    histograms.add(value.tag)
    return scalars, histograms


@pytest.fixture(scope='module')
def trained(corpus, tmp_path_factory):
    """One run of six steps, saving every second step and keeping three checkpoints."""
    cwd = tmp_path_factory.mktemp('run')
    logdir = cwd / 'trained'
    result = run_train(corpus, cwd, f'--logdir={logdir}', '--num_steps=6',
                       '--checkpoint_every=2', '--max_checkpoints=3',
                       f'--gc_channels={GC_CHANNELS}', '--histograms=true',
                       '--store_metadata=true')
    assert result.returncode == 0, result.stderr
    return logdir, result


def copy_of(logdir, tmp_path):
    return shutil.copytree(logdir, tmp_path / 'logdir')


def test_training_writes_checkpoints_description_and_events(trained):
    logdir, result = trained
    assert 'Detected --gc_cardinality=3' in result.stdout
    assert f'Trying to restore saved checkpoints from {logdir} ... No checkpoint found.' \
        in result.stdout
    steps = printed_steps(result.stdout)
    assert [s for s, _ in steps] == [0, 1, 2, 3, 4, 5]
    assert abs(steps[0][1] - np.log(256)) < 0.5  # an untrained network is close to uniform
    assert result.stdout.count(f'Storing checkpoint to {logdir} ... Done.') == 4  # 0, 2, 4, 5
    assert checkpoint_numbers(logdir) == [2, 4, 5]
    assert saved_state(str(logdir / 'model.ckpt-5')) == (5, 6)

    description = json.loads((logdir / 'wavenet_params.json').read_text())
    assert description == dict(CORPUS_PARAMS, **OPTIONAL_DEFAULTS, gc_channels=GC_CHANNELS,
                               gc_cardinality=3)

    scalars, histograms = events(logdir)
    time_tags = {f'time/{part.replace(" ", "_")}' for part in Stopwatch.PARTS + ('other',)}
    assert set(scalars) == {'loss', 'time/wall'} | time_tags
    assert sorted(scalars['loss']) == [0, 1, 2, 3, 4, 5]
    for step, loss in steps:
        assert abs(scalars['loss'][step] - loss) <= 0.0005
    assert any('gc_embedding' in tag for tag in histograms)
    assert os.listdir(logdir / 'plugins' / 'profile')  # --store_metadata profiled step 0

    # A small network trained on pieces: compiled, and where the time went, in one line
    # and in TensorBoard at the last step, the parts adding up to the wall time.
    assert 'Training step: compiled with XLA (--jit_compile=auto)' in result.stdout
    line, = re.findall(r'^Wall time \d+ s: .*$', result.stdout, re.M)
    parts = dict(re.findall(r'([a-z -]+) (\d+) s \(\d+ %\)(?:, |$)', line.split(': ', 1)[1]))
    assert {'start-up', 'compiling'} <= set(parts) <= set(Stopwatch.PARTS + ('other',))
    times = {tag: values[5] for tag, values in scalars.items() if tag.startswith('time/')}
    assert sum(times.values()) - times['time/wall'] == pytest.approx(times['time/wall'],
                                                                     rel=1e-3)
    assert times['time/compiling'] > 0 and times['time/steps'] > 0


def test_resume_continues_after_the_saved_step(train_in_process, trained, corpus, tmp_path):
    logdir = copy_of(trained[0], tmp_path)
    result = train_in_process(corpus, f'--logdir={logdir}', '--num_steps=9',
                              '--checkpoint_every=2', f'--gc_channels={GC_CHANNELS}',
                              '--l2_regularization_strength=0.01')
    assert result.returncode == 0, result.stderr
    assert f'  Checkpoint found: {logdir}/model.ckpt-5' in result.stdout
    assert '  Global step was: 5' in result.stdout
    steps = printed_steps(result.stdout)
    assert [s for s, _ in steps] == [6, 7, 8]
    assert checkpoint_numbers(logdir)[-1] == 8
    assert saved_state(str(logdir / 'model.ckpt-8')) == (8, 9)  # Adam's state came along

    scalars, _ = events(logdir)
    assert {tag for tag in scalars if not tag.startswith('time/')} == {'loss', 'l2_loss',
                                                                       'total_loss'}
    for step, printed in steps:  # what is printed is what was minimised: loss + L2
        total = scalars['loss'][step] + 0.01 * scalars['l2_loss'][step]
        assert abs(scalars['total_loss'][step] - total) < 1e-4
        assert abs(printed - total) <= 0.0005


def test_learning_rate_flag_wins_over_the_restored_one(train_in_process, trained, corpus,
                                                      tmp_path):
    # Keras saves the learning rate with the optimizer; the original's flag always applied.
    logdir = copy_of(trained[0], tmp_path)
    result = train_in_process(corpus, f'--logdir={logdir}', '--num_steps=7',
                              '--learning_rate=0.25', f'--gc_channels={GC_CHANNELS}')
    assert result.returncode == 0, result.stderr
    saved = tf.train.load_variable(str(logdir / 'model.ckpt-6'),
                                   'optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE')
    assert saved == pytest.approx(0.25)


def test_a_cosine_schedule_takes_the_rate_down_to_its_floor(train_main, corpus, tmp_path):
    """--learning_rate_schedule=cosine: the rate of step s (kept in its checkpoint) is half
    a cosine from --learning_rate at step 0 to a thirtieth of it at the last step."""
    train_main(train_flags(corpus, '--logdir=logdir', '--num_steps=5', '--checkpoint_every=2',
                           '--learning_rate=0.1', '--learning_rate_schedule=cosine'))
    for step in (0, 2, 4):
        saved = tf.train.load_variable(str(tmp_path / 'logdir' / f'model.ckpt-{step}'),
                                       'optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE')
        floor = 0.1 / 30
        assert saved == pytest.approx(floor + (0.1 - floor) * (1 + np.cos(np.pi * step / 4)) / 2)


def test_restore_from_elsewhere_starts_at_step_zero_in_a_new_logdir(train_in_process, trained,
                                                                   corpus, tmp_path):
    source = shutil.copytree(trained[0], tmp_path / 'source')
    before = {path: path.stat().st_mtime_ns for path in source.rglob('*')}
    # No --logdir_root: the default, ./logdir/train/<date>.
    result = train_in_process(corpus, f'--restore_from={source}', '--num_steps=2',
                              f'--gc_channels={GC_CHANNELS}')
    assert result.returncode == 0, result.stderr
    assert f'  Checkpoint found: {source}/model.ckpt-5' in result.stdout
    assert [s for s, _ in printed_steps(result.stdout)] == [0, 1]
    logdir, = (tmp_path / 'logdir' / 'train').iterdir()
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d', logdir.name)
    assert checkpoint_numbers(logdir) == [0, 1]
    assert saved_state(str(logdir / 'model.ckpt-1')) == (1, 8)  # 6 updates before, 2 here
    assert (logdir / 'wavenet_params.json').exists() and list(logdir.glob('events.*'))
    # The source is left alone: no file added (events, params), none rewritten.
    assert {path: path.stat().st_mtime_ns for path in source.rglob('*')} == before


def test_resume_restores_the_weights_themselves(train_in_process, trained, corpus, tmp_path):
    """One more step at a vanishing learning rate: the weights saved after it are the
    restored ones, not a fresh network's."""
    logdir = copy_of(trained[0], tmp_path)
    result = train_in_process(corpus, f'--logdir={logdir}', '--num_steps=7',
                              '--learning_rate=1e-12', f'--gc_channels={GC_CHANNELS}')
    assert result.returncode == 0, result.stderr
    assert [s for s, _ in printed_steps(result.stdout)] == [6]
    restored, saved = (tf.train.load_checkpoint(str(logdir / f'model.ckpt-{n}')) for n in (5, 6))
    names = [name for name, _ in tf.train.list_variables(str(logdir / 'model.ckpt-5'))
             if name.startswith('model/') and 'OPTIMIZER' not in name]
    assert len(names) > 20
    for name in names:
        np.testing.assert_allclose(saved.get_tensor(name), restored.get_tensor(name),
                                   atol=1e-9, err_msg=name)


@pytest.mark.parametrize('flags, message', [
    (['--logdir=a', '--logdir_root=b'],
     '--logdir and --logdir_root cannot be specified at the same time.'),
    (['--logdir=a', '--restore_from=b'],
     '--logdir and --restore_from cannot be specified at the same time. This is to keep'),
    (['--data_dir=missing'], '--data_dir missing: no such directory'),
    (['--wavenet_params=missing.json'], 'missing.json: no such params file'),
    (['--batch_size=0'], "argument --batch_size: must be a positive int, got '0'"),
    (['--sample_size=-1'], "argument --sample_size: must be an integer >= 0, got '-1'"),
    (['--learning_rate=inf'], "argument --learning_rate: must be a positive float, got 'inf'"),
    (['--l2_regularization_strength=nan'], 'argument --l2_regularization_strength: must be'),
    (['--logdir=params.json'], '--logdir params.json: '),
    (['--logdir_root=params.json/sub'], '--logdir_root params.json/sub: '),
    (['--num_steps=1.5'], "argument --num_steps: must be a positive int, got '1.5'"),
    (['--checkpoint_every=0'], "argument --checkpoint_every: must be a positive int"),
    (['--learning_rate=0'], "argument --learning_rate: must be a positive float, got '0'"),
    (['--max_checkpoints=0'], 'argument --max_checkpoints: must be a positive int'),
    (['--l2_regularization_strength=-1'], 'argument --l2_regularization_strength: must be'),
    (['--momentum=2'], 'argument --momentum: must be between 0 and 1, got 2.0'),
    (['--histograms=yes'], "argument --histograms: expected true or false, got 'yes'"),
    (['--optimizer=adagrad'], "argument --optimizer: invalid choice: 'adagrad'"),
    (['--learning_rate_schedule=step'],
     "argument --learning_rate_schedule: invalid choice: 'step'"),
    (['--max_minutes=0'], "argument --max_minutes: must be a positive float, got '0'"),
    (['--max_minutes=nan'], "argument --max_minutes: must be a positive float, got 'nan'"),
    (['--restore_from=nowhere'], '--restore_from nowhere: no checkpoint found there'),
])
def test_bad_flags_are_one_line_errors(train_main, corpus, tmp_path, capsys, flags, message):
    (tmp_path / 'params.json').write_text('{}')  # a file where a directory is asked for
    with pytest.raises(SystemExit) as exit_info:
        train_main(train_flags(corpus, *flags))
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f'train.py: error: {message}') and error.count('\n') == 1
    assert os.listdir(tmp_path) == ['params.json']  # nothing written


def test_an_impossible_network_is_refused_before_the_corpus_is_read(train_main, corpus,
                                                                   tmp_path, capsys):
    (tmp_path / 'params.json').write_text(json.dumps(dict(CORPUS_PARAMS, dilations=[1, 2 ** 40])))
    with pytest.raises(SystemExit) as exit_info:
        train_main(train_flags(corpus, f'--wavenet_params={tmp_path / "params.json"}',
                               f'--logdir={tmp_path / "logdir"}'))
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f'train.py: error: {tmp_path / "params.json"}: "dilations" '
                                   'give a receptive field of')
    assert captured.err.count('\n') == 1 and 'Corpus' not in captured.out
    assert os.listdir(tmp_path) == ['params.json']


def test_corpus_errors_are_one_line(train_main, tmp_path, capsys):
    write_corpus(tmp_path / 'corpus')
    (tmp_path / 'corpus' / 'unlabelled.wav').write_bytes(
        (tmp_path / 'corpus' / 'p1' / 'p1_001.wav').read_bytes())
    (tmp_path / 'params.json').write_text(json.dumps(CORPUS_PARAMS))
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'unreadable').mkdir()
    for name in ('p1_001.wav', 'p1_002.wav'):  # a corpus of files that are not audio
        (tmp_path / 'unreadable' / name).write_text('not audio')
    params = f'--wavenet_params={tmp_path / "params.json"}'
    cases = [([f'--data_dir={tmp_path / "corpus"}', '--gc_channels=4'],
              f"'{tmp_path / 'corpus' / 'unlabelled.wav'}' has no speaker id"),
             ([f'--data_dir={tmp_path / "empty"}'], f"No audio files found in '{tmp_path}/empty'"),
             ([f'--data_dir={tmp_path / "unreadable"}'],
              f"no usable audio: not one of the 2 training files can be read as audio "
              f"({tmp_path}/unreadable/p1_001.wav: Error opening")]
    for flags, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            train_main([*flags, params])
        assert exit_info.value.code == 2
        error = capsys.readouterr().err
        assert error.startswith('train.py: error: ') and error.count('\n') == 1
        assert message in error
    assert not (tmp_path / 'logdir').exists()


def test_a_corpus_of_silence_is_refused_with_a_threshold_that_would_keep_it(train_main, tmp_path,
                                                                          capsys):
    t = np.arange(8000) / 16000
    for speaker in (1, 2):
        path = tmp_path / 'quiet' / f'p{speaker}_001.wav'
        path.parent.mkdir(exist_ok=True)
        # A sine of amplitude A has a frame RMS of A / sqrt(2): 0.0141 for the louder one.
        soundfile.write(str(path), 0.01 * speaker * np.sin(2 * np.pi * 440 * t), 16000,
                        subtype='FLOAT')
    (tmp_path / 'params.json').write_text(json.dumps(CORPUS_PARAMS))
    flags = [f'--data_dir={tmp_path / "quiet"}', f'--wavenet_params={tmp_path}/params.json',
             '--logdir=logdir', '--sample_size=500']
    with pytest.raises(SystemExit) as exit_info:
        train_main(flags)  # the default threshold, 0.3
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert f'Corpus {tmp_path / "quiet"}: 2 files, 2 speakers, 1.0 seconds of audio' in out
    match = re.fullmatch(r'train\.py: error: no usable audio: every file in the corpus was '
                         r'skipped; the loudest frame RMS found was ([0-9.]+): '
                         r'--silence_threshold=0\.007 would keep it', err.splitlines()[-1])
    assert match and float(match.group(1)) == pytest.approx(0.02 / np.sqrt(2), rel=0.01), err
    train_main([*flags, '--silence_threshold=0.007', '--num_steps=1'])  # and it does
    assert printed_steps(capsys.readouterr().out)[0][0] == 0
    # A whisper (frame RMS 0.00035): 0.0011 trims it all away, 0.001 and below trim nothing.
    for path in (tmp_path / 'quiet').iterdir():
        audio, rate = soundfile.read(str(path))
        soundfile.write(str(path), audio / 40, rate, subtype='FLOAT')
    with pytest.raises(SystemExit):
        train_main([*flags, '--silence_threshold=0.0011', '--num_steps=1', '--logdir=trim'])
    assert 'no usable audio' in capsys.readouterr().err
    train_main([*flags, '--silence_threshold=0.001', '--num_steps=1', '--logdir=off'])
    assert printed_steps(capsys.readouterr().out)[0][0] == 0


def test_validation_loss_of_the_held_out_files(train_main, corpus, tmp_path, capsys):
    # p1/p1_001.wav and p2/p2_002.wav hash below 0.6, the other two above.
    train_main(train_flags(corpus, '--logdir=logdir', '--validation_fraction=0.6',
                           '--validation_pieces=3', '--checkpoint_every=2', '--num_steps=5'))
    out = capsys.readouterr().out
    assert (f'Corpus {corpus}: 4 files (2 held out for validation), 2 speakers, '
            '1.0 seconds of audio') in out
    printed = {int(step): float(loss) for step, loss in
               re.findall(r'^step (\d+) - validation_loss = (\d+\.\d{3})$', out, re.M)}
    assert sorted(printed) == [0, 2, 4]
    scalars, _ = events(tmp_path / 'logdir')
    assert sorted(scalars['validation_loss']) == [0, 2, 4]
    # Independently: the step-4 weights' mean loss over the first three pieces of the
    # held-out files, in sorted order.
    net = build_model(describe(CORPUS_PARAMS))
    tf.train.Checkpoint(model=net).read('logdir/model.ckpt-4').expect_partial()
    pieces = [p for name in ('p1/p1_001.wav', 'p2/p2_002.wav')
              for p in cut_pieces(load_audio(str(corpus / name), 16000), net.receptive_field,
                                  500)][:3]
    expected = np.mean([float(net.loss(p[np.newaxis, :, np.newaxis])) for p in pieces])
    assert scalars['validation_loss'][4] == pytest.approx(expected, abs=1e-5)
    assert printed[4] == pytest.approx(expected, abs=1e-3)


def test_a_batch_of_whole_clips(train_main, tmp_path, capsys):
    """--batch_size 2 --sample_size 0: the first step's loss is the mean over both whole
    clips (each front-padded by a receptive field), as the network before the step sees
    them (a vanishing learning rate keeps the saved weights those of before the step)."""
    corpus = tmp_path / 'two'
    t = np.arange(3000) / 16000
    for speaker, frequency in ((1, 220), (2, 1500)):
        path = corpus / f'p{speaker}' / f'p{speaker}_001.wav'
        path.parent.mkdir(parents=True)
        soundfile.write(str(path), 0.5 * np.sin(2 * np.pi * frequency * t), 16000,
                        subtype='PCM_16')
    (tmp_path / 'params.json').write_text(json.dumps(CORPUS_PARAMS))
    train_main([f'--data_dir={corpus}', f'--wavenet_params={tmp_path / "params.json"}',
                '--batch_size=2', '--sample_size=0', '--silence_threshold=0', '--num_steps=1',
                '--optimizer=sgd', '--learning_rate=1e-12', '--logdir=logdir'])
    (step, printed), = printed_steps(capsys.readouterr().out)
    net = build_model(describe(CORPUS_PARAMS))
    tf.train.Checkpoint(model=net).read('logdir/model.ckpt-0').expect_partial()
    clips = [cut_pieces(load_audio(str(path), 16000), net.receptive_field, 0)[0]
             for path in sorted(corpus.rglob('*.wav'))]
    assert [len(clip) for clip in clips] == [3000 + net.receptive_field] * 2
    alone = [float(net.loss(clip[np.newaxis, :, np.newaxis])) for clip in clips]
    assert abs(alone[0] - alone[1]) > 1e-3  # so that one clip alone would not pass
    both = float(net.loss(np.stack(clips)[..., np.newaxis]))
    assert both == pytest.approx(np.mean(alone), abs=1e-5)
    scalars, _ = events(tmp_path / 'logdir')
    assert scalars['loss'][0] == pytest.approx(both, abs=1e-5)
    assert printed == pytest.approx(both, abs=1e-3)


def test_rmsprop_and_its_momentum_take_effect(train_main, corpus, tmp_path):
    """The checkpoint after one RMSprop step holds one mean square per weight, started at 1
    as TF 1 starts it (so at least 0.9 after one step; Keras' own would start at 0), and
    a momentum per weight only when --momentum is set."""
    weights = len(build_model(describe(CORPUS_PARAMS)).trainable_variables)
    for momentum in (0.0, 0.5):
        train_main(train_flags(corpus, f'--logdir=m{momentum}', '--optimizer=rmsprop',
                               f'--momentum={momentum}', '--num_steps=1'))
        reader = tf.train.load_checkpoint(f'm{momentum}/model.ckpt-0')
        slots = [reader.get_tensor(name) for name, _ in
                 tf.train.list_variables(f'm{momentum}/model.ckpt-0')
                 if name.startswith('optimizer/_variables/')]
        mean_squares = [slot for slot in slots if slot.min() >= 0.9]
        assert len(mean_squares) == weights
        assert len(slots) == weights * (2 if momentum else 1)
        assert all(slot.max() < 1.0 + 1e-6 for slot in mean_squares)


def test_validation_flags_are_checked(train_main, corpus, tmp_path, capsys):
    cases = [(['--validation_fraction=1'], 'argument --validation_fraction: must be at least 0'),
             (['--validation_fraction=0.2', f'--validation_dir={corpus}'],
              '--validation_fraction and --validation_dir cannot be used together'),
             (['--validation_fraction=0.001'], '--validation_fraction 0.001 holds out none of '),
             (['--validation_dir=nowhere'], '--validation_dir nowhere: no such directory')]
    for flags, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            train_main(train_flags(corpus, '--logdir=logdir', *flags))
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(f'train.py: error: {message}') and err.count('\n') == 1, err
    assert not (tmp_path / 'logdir').exists()
    # A folder inside the corpus: its files are held out, the rest train.
    train_main(train_flags(corpus, '--logdir=logdir', f'--validation_dir={corpus}/p2',
                           '--num_steps=1'))
    out = capsys.readouterr().out
    assert re.search(r'^step 0 - validation_loss = \d', out, re.M)
    assert '4 files (2 held out for validation), 2 speakers' in out


@pytest.mark.parametrize('gc_flag, params_change, field', [
    ('--gc_channels=8', {}, '--gc_channels=8 does not match'),
    (None, {}, '--gc_channels=None does not match'),
    ('--gc_channels=4', {'residual_channels': 16}, '"residual_channels": 16 in --wavenet_params'),
])
def test_network_unlike_the_saved_description_is_refused(train_main, trained, corpus, tmp_path,
                                                         capsys, gc_flag, params_change, field):
    logdir = copy_of(trained[0], tmp_path)
    (tmp_path / 'params.json').write_text(json.dumps(dict(CORPUS_PARAMS, **params_change)))
    flags = train_flags(corpus, f'--logdir={logdir}') + [f'--wavenet_params={tmp_path}/params.json']
    with pytest.raises(SystemExit) as exit_info:
        train_main(flags + ([gc_flag] if gc_flag else []))
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count('\n') == 1 and field in error and str(logdir) in error


def test_checkpoint_that_does_not_fit_is_a_one_line_error(trained, corpus, tmp_path):
    logdir = copy_of(trained[0], tmp_path)
    os.remove(logdir / 'wavenet_params.json')  # as if written by another tool
    (tmp_path / 'params.json').write_text(json.dumps(dict(CORPUS_PARAMS, residual_channels=16)))
    result = run_train(corpus, tmp_path, f'--logdir={logdir}', f'--gc_channels={GC_CHANNELS}',
                       f'--wavenet_params={tmp_path}/params.json')
    assert result.returncode == 2
    # TensorFlow's own log lines may precede it (cuInit on hosts without CUDA); nothing follows.
    # Without a saved description the weights' shapes are checked, naming the field.
    assert result.stderr.splitlines()[-1] == (
        f'train.py: error: {logdir}/model.ckpt-5 holds a network with residual_channels = 8, '
        f'but --wavenet_params {tmp_path}/params.json says 16')
    assert 'Traceback' not in result.stderr and 'WARNING' not in result.stderr
    assert checkpoint_numbers(logdir) == [2, 4, 5]


def folder_bytes(directory):
    """Every file below ``directory`` and its bytes."""
    return {os.path.join(root, name): open(os.path.join(root, name), 'rb').read()
            for root, _, names in os.walk(directory) for name in names}


def test_a_damaged_checkpoint_is_named_and_never_written_over(trained, train_in_process, corpus,
                                                             tmp_path):
    """A newest checkpoint whose data file was cut short (a full disk, an interrupted copy):
    generate.py and train.py name it in one line and write nothing; once its files are
    moved away, training resumes from the newest intact one."""
    logdir = copy_of(trained[0], tmp_path)
    damaged = f'{logdir}/model.ckpt-5'
    for name in os.listdir(logdir):
        if name.startswith('model.ckpt-5.data-'):
            with open(logdir / name, 'r+b') as f:
                f.truncate(os.path.getsize(logdir / name) // 2)
    before = folder_bytes(logdir)

    result = run_generate(logdir, '--gc_id', '1', '--samples', '10', '--logdir', tmp_path / 'g')
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(
        f'generate.py: error: checkpoint {damaged} is damaged: its data cannot be read whole')
    assert 'Traceback' not in result.stderr

    result = train_in_process(corpus, f'--logdir={logdir}', '--num_steps=8',
                              f'--gc_channels={GC_CHANNELS}')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    line = result.stderr.splitlines()[-1]
    assert line.startswith(f'train.py: error: checkpoint {damaged} is damaged: its data '
                           'cannot be read whole')
    assert line.endswith(f'; move its files model.ckpt-5.* out of {logdir} to resume from the '
                         f'newest intact one, {logdir}/model.ckpt-4')
    assert folder_bytes(logdir) == before

    (tmp_path / 'aside').mkdir()
    for name in os.listdir(logdir):
        if name.startswith('model.ckpt-5.'):
            os.replace(logdir / name, tmp_path / 'aside' / name)
    result = train_in_process(corpus, f'--logdir={logdir}', '--num_steps=7',
                              f'--gc_channels={GC_CHANNELS}')
    assert result.returncode == 0, result.stderr
    assert [step for step, _ in printed_steps(result.stdout)] == [5, 6]


def test_error_from_the_command_line_is_exactly_one_line(corpus, tmp_path):
    result = run_train(corpus, tmp_path, '--logdir=a', '--logdir_root=b')
    assert result.returncode == 2
    assert result.stderr == ('train.py: error: --logdir and --logdir_root cannot be specified '
                             'at the same time.\n')
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('signals', [[signal.SIGINT], [signal.SIGTERM],
                                     [signal.SIGINT, signal.SIGINT]],
                         ids=['ctrl-c', 'sigterm', 'ctrl-c twice'])
def test_stop_signal_saves_a_checkpoint(corpus, tmp_path, signals):
    """One signal stops after the step in flight; a second Ctrl-C interrupts that step.
    Either way the checkpoint saved is the last completed step's, optimizer and all."""
    logdir = tmp_path / 'logdir'
    process = subprocess.Popen(
        [sys.executable, TRAIN, *train_flags(corpus, f'--logdir={logdir}',
                                             '--checkpoint_every=1000')],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED='1'))
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith('step 3 -'):
            for signum in signals:
                process.send_signal(signum)
            break
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    last_step = printed_steps(''.join(lines) + stdout)[-1][0]
    assert 3 <= last_step < 1000
    assert checkpoint_numbers(logdir) == [0, last_step]
    assert saved_state(str(logdir / f'model.ckpt-{last_step}'), None, None) == \
        (last_step, last_step + 1)


# train.py with one file of the corpus failing inside the input pipeline, as a bug in
# decoding would, while the other files keep its workers inside Python.
FAILING_PIPELINE = """
import runpy, sys, time
from wavenet.audio_reader import AudioReader
padded_pieces = AudioReader._padded_pieces
def failing(self, filename, equal=False):
    if filename.endswith(b'p1_001.wav'):
        raise RuntimeError('injected failure in ' + filename.decode())
    time.sleep(0.05)
    return padded_pieces(self, filename, equal)
AudioReader._padded_pieces = failing
sys.argv = [{train!r}] + {flags!r}
runpy.run_path({train!r}, run_name='__main__')
"""


def test_an_error_inside_the_input_pipeline_ends_the_process(corpus, tmp_path):
    """The error is printed and the process exits, every time: it used to wait for ever,
    in about one run of three, on a pipeline worker that the interpreter's shutdown had
    stopped (three runs would miss that three times in ten)."""
    script = tmp_path / 'failing_pipeline.py'
    script.write_text(FAILING_PIPELINE.format(
        train=TRAIN, flags=train_flags(corpus, f'--logdir={tmp_path / "logdir"}',
                                       '--num_steps=1000', '--checkpoint_every=1000')))
    for attempt in range(3):
        try:
            result = subprocess.run([sys.executable, str(script)], cwd=tmp_path,
                                    capture_output=True, text=True, timeout=90,
                                    env=dict(os.environ, PYTHONPATH=ROOT))
        except subprocess.TimeoutExpired:
            pytest.fail(f'attempt {attempt}: train.py did not exit after the pipeline failed')
        assert result.returncode == 1, result.stderr
        assert 'RuntimeError: injected failure in ' in result.stderr


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(train_in_process, corpus,
                                                           tmp_path):
    logdir = tmp_path / 'logdir'
    # A learning rate this absurd makes the logits overflow within a few steps.
    result = train_in_process(corpus, f'--logdir={logdir}', '--optimizer=sgd',
                              '--learning_rate=1e30', '--checkpoint_every=1', '--num_steps=50')
    assert result.returncode == 1
    message = result.stderr.splitlines()[-1]
    match = re.fullmatch(r'train\.py: error: Loss is (NaN|infinite) at step (\d+); stopping\. '
                         r'The last good checkpoint is (.*)\.', message)
    assert match, message
    nan_step = int(match.group(2))
    steps = printed_steps(result.stdout)
    assert nan_step >= 1 and [s for s, _ in steps] == list(range(nan_step))
    assert all(np.isfinite(loss) for _, loss in steps)
    assert match.group(3) == str(logdir / f'model.ckpt-{nan_step - 1}')
    assert tf.train.latest_checkpoint(str(logdir)) == match.group(3)


def test_a_seeded_training_runs_again_alike(train_in_process, corpus, tmp_path):
    """--seed: the same initial weights, pieces in the same order, the same losses and
    weights; another seed, another training."""
    runs = {}
    for name, seed in (('a', 5), ('b', 5), ('c', 6)):
        result = train_in_process(corpus, f'--logdir={tmp_path / name}', '--num_steps=4',
                                  f'--seed={seed}', '--shuffle_pieces=8')
        assert result.returncode == 0, result.stderr
        weights = tf.train.load_variable(str(tmp_path / name / 'model.ckpt-3'),
                                         'model/layer1/filter/.ATTRIBUTES/VARIABLE_VALUE')
        runs[name] = printed_steps(result.stdout), weights
    assert [loss for _, loss in runs['a'][0]] == [loss for _, loss in runs['b'][0]]
    np.testing.assert_array_equal(runs['a'][1], runs['b'][1])
    assert not np.array_equal(runs['a'][1], runs['c'][1])
