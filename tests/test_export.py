"""``python -m wavenet.export``: the SavedModel, loaded by a Python that cannot import this
package, draws exactly the samples generate.py writes for the same checkpoint, inputs, seed
and temperature; saved_model_cli lists its signatures; what it cannot export it refuses in
one line, leaving nothing behind."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from helpers import (
    GC_CARDINALITY,
    GC_CHANNELS,
    SMALL,
    SMALL_VOCODER,
    TOOL_TIMEOUT,
    describe,
    read_int16,
    run_generate,
    run_in_process,
    save_checkpoint,
)

# A vocoder with all that the demo's has: a context network and linear prediction.
VOCODER = dict(SMALL_VOCODER, lc_context_channels=8, lpc_order=4)

# Run by ``python -I`` (no script folder, PYTHONPATH or user site on the path) in a folder
# without the package: loads the SavedModel, calls each signature of argv[2] (JSON:
# ``[[name, {argument: [value, dtype]}], ...]``) and saves the audio to out_<k>.npy, or
# the message of the call's refusal to error_<k>.txt.
LOADER = '''
import json, sys
try:
    import wavenet
except ImportError:
    pass
else:
    sys.exit('wavenet is importable here')
import numpy as np
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
for k, (name, arguments) in enumerate(json.loads(sys.argv[2])):
    inputs = {key: tf.constant(np.load(value)) if dtype == 'npy' else tf.constant(value, dtype)
              for key, (value, dtype) in arguments.items()}
    try:
        audio = model.signatures[name](**inputs)['audio'].numpy()
    except tf.errors.InvalidArgumentError as e:
        open(f'error_{k}.txt', 'w').write(e.message)
    else:
        np.save(f'out_{k}.npy', audio)
'''


def export(checkpoint, out_dir, *flags):
    return subprocess.run([sys.executable, '-m', 'wavenet.export', str(checkpoint),
                           str(out_dir), *map(str, flags)], capture_output=True, text=True,
                          timeout=TOOL_TIMEOUT, cwd=os.path.dirname(os.path.dirname(
                              os.path.abspath(__file__))))


def serve(model, calls, folder):
    """The ``CompletedProcess`` of a process that cannot import wavenet making each
    ``(signature, arguments)`` call of the SavedModel ``model`` in ``folder``."""
    folder.mkdir(exist_ok=True)
    (folder / 'load.py').write_text(LOADER)
    return subprocess.run([sys.executable, '-I', 'load.py', str(model), json.dumps(calls)],
                          cwd=folder, capture_output=True, text=True, timeout=TOOL_TIMEOUT)


def served(model, calls, folder):
    """The audio of each call of ``serve``, or the message of its refusal."""
    result = serve(model, calls, folder)
    assert result.returncode == 0, result.stderr[-3000:]
    return [np.load(folder / f'out_{k}.npy') if (folder / f'out_{k}.npy').exists()
            else (folder / f'error_{k}.txt').read_text() for k in range(len(calls))]


def as_int16(audio):
    """The 16-bit samples of exported audio (each a 16-bit value over 32768)."""
    scaled = np.asarray(audio, np.float64) * 32768
    np.testing.assert_array_equal(scaled, np.round(scaled))
    return scaled.astype(np.int16)


@pytest.fixture(scope='module')
def vocoder(tmp_path_factory, small_vocoder):
    root = tmp_path_factory.mktemp('exported_vocoder')
    checkpoint = save_checkpoint(root / 'checkpoint', describe(VOCODER))
    result = export(checkpoint, root / 'model')
    assert result.returncode == 0, result.stderr
    return dict(root=root, checkpoint=checkpoint, model=root / 'model',
                tones=[small_vocoder['root'] / 'short.wav', small_vocoder['root'] / 'long.wav'],
                stdout=result.stdout)


@pytest.fixture(scope='module')
def speakers(tmp_path_factory, speaker_files):
    root = tmp_path_factory.mktemp('exported_speakers')
    result = export(speaker_files['prefix'], root / 'model')
    assert result.returncode == 0, result.stderr
    return dict(root=root, model=root / 'model', prefix=speaker_files['prefix'])


# A batch signature runs its rows as one group, as generate.py does on one core (on more,
# it gives each core some of the rows, and XLA's products of one row and of several may
# round differently); so generate.py's batches here run on one core.


def test_a_served_vocoder_draws_what_generate_py_writes(vocoder, tmp_path):
    short, long = vocoder['tones']
    out = tmp_path / 'out.wav'
    result = run_generate(vocoder['checkpoint'], '--lc_wav', short, '--lc_wav', long,
                          '--seed', 12, '--wav_out_path', out, '--logdir', tmp_path / 'logs',
                          cores=1)
    assert result.returncode == 0, result.stderr
    batch = [read_int16(tmp_path / f'out_{name}.wav') for name in ('short', 'long')]
    assert len(batch[1]) > len(batch[0]) > 0
    result = run_generate(vocoder['checkpoint'], '--lc_wav', long, '--seed', 12,
                          '--wav_out_path', out, '--logdir', tmp_path / 'logs')
    assert result.returncode == 0, result.stderr
    alone = read_int16(out)
    # The features, as generate.py computes them, padded with silence as it pads them.
    from wavenet.params import NetworkDescription
    features = NetworkDescription.beside(str(vocoder['checkpoint'])).features
    frames = [features(soundfile.read(str(path), dtype='float32')[0]) for path in (short, long)]
    padding = features.silence(len(frames[1]) - len(frames[0]))
    np.save(tmp_path / 'long.npy', frames[1])
    np.save(tmp_path / 'both.npy', np.stack([np.concatenate([frames[0], padding]), frames[1]]))
    common = {'seed': [12, 'int64'], 'temperature': [1.0, 'float32']}
    calls = [['vocode', dict(common, features=[str(tmp_path / 'long.npy'), 'npy'])],
             ['vocode_batch', dict(common, features=[str(tmp_path / 'both.npy'), 'npy'])]]
    served_alone, served_batch = served(vocoder['model'], calls, tmp_path / 'served')
    np.testing.assert_array_equal(as_int16(served_alone), alone)
    np.testing.assert_array_equal(as_int16(served_batch[0][:len(batch[0])]), batch[0])
    np.testing.assert_array_equal(as_int16(served_batch[1]), batch[1])
    assert np.std(alone) > 0  # a generation, not silence


def test_a_served_speaker_network_draws_what_generate_py_writes(speakers, tmp_path):
    for ids, cores in (('4', None), ('1,4', 1)):
        result = run_generate(speakers['prefix'], '--gc_id', ids, '--samples', 2500,
                              '--seed', 5, '--temperature', 0.7, '--wav_out_path',
                              tmp_path / f'out{ids}.wav', '--logdir', tmp_path / 'logs',
                              cores=cores)
        assert result.returncode == 0, result.stderr
    alone = read_int16(tmp_path / 'out4.wav')
    batch = [read_int16(tmp_path / f'out1,4_gc{speaker}.wav') for speaker in (1, 4)]
    common = {'samples': [2500, 'int32'], 'seed': [5, 'int64'],
              'temperature': [0.7, 'float32']}
    calls = [['generate', dict(common, speaker=[4, 'int32'])],
             ['generate_batch', dict(common, speakers=[[1, 4], 'int32'])]]
    served_alone, served_batch = served(speakers['model'], calls, tmp_path / 'served')
    np.testing.assert_array_equal(as_int16(served_alone), alone)
    np.testing.assert_array_equal(as_int16(served_batch), np.stack(batch))
    assert not np.array_equal(batch[0], batch[1])


def test_a_served_call_refuses_bad_inputs_by_name(speakers, tmp_path):
    refusals = {('speaker', 6): 'speaker ids must be below 6',
                ('speaker', -1): 'speaker ids must be >= 0',
                ('temperature', 0.0): 'temperature must be above 0',
                ('samples', 0): 'samples must be at least 1'}
    calls = []
    for argument, value in refusals:
        arguments = {'samples': [100, 'int32'], 'speaker': [1, 'int32'], 'seed': [5, 'int64'],
                     'temperature': [1.0, 'float32']}
        arguments[argument][0] = value
        calls.append(['generate', arguments])
    for answer, message in zip(served(speakers['model'], calls, tmp_path), refusals.values()):
        assert isinstance(answer, str) and message in answer, answer


def test_a_served_plain_network_draws_what_generate_py_writes(plain_checkpoint, tmp_path):
    result = export(plain_checkpoint, tmp_path / 'model')
    assert result.returncode == 0, result.stderr
    for streams, cores in ((1, None), (2, 1)):
        result = run_generate(plain_checkpoint, '--streams', streams, '--samples', 1500,
                              '--seed', 9, '--wav_out_path', tmp_path / f'out{streams}.wav',
                              '--logdir', tmp_path / 'logs', cores=cores)
        assert result.returncode == 0, result.stderr
    alone = read_int16(tmp_path / 'out1.wav')
    batch = [read_int16(tmp_path / f'out2_s{stream}.wav') for stream in (0, 1)]
    common = {'samples': [1500, 'int32'], 'seed': [9, 'int64'], 'temperature': [1.0, 'float32']}
    calls = [['generate', common], ['generate_batch', dict(common, streams=[2, 'int32'])]]
    served_alone, served_batch = served(tmp_path / 'model', calls, tmp_path / 'served')
    np.testing.assert_array_equal(as_int16(served_alone), alone)
    np.testing.assert_array_equal(as_int16(served_batch), np.stack(batch))
    assert not np.array_equal(batch[0], batch[1])


def test_the_description_travels_as_an_asset(speakers, speaker_files):
    saved = json.loads((speakers['model'] / 'assets' / 'wavenet_params.json').read_text())
    assert saved == describe(SMALL, GC_CHANNELS, GC_CARDINALITY).as_json()


def test_saved_model_cli_lists_the_signatures(vocoder, speakers):
    shown = {}
    for kind in ('vocoder', 'speakers'):
        model = (vocoder if kind == 'vocoder' else speakers)['model']
        result = subprocess.run(['saved_model_cli', 'show', '--all', '--dir', str(model)],
                                capture_output=True, text=True, timeout=TOOL_TIMEOUT)
        assert result.returncode == 0, result.stderr
        shown[kind] = result.stdout
    channels = VOCODER['lc_channels']
    for expected in ("signature_def['vocode']:", "signature_def['vocode_batch']:",
                     f'shape: (-1, {channels})', f'shape: (-1, -1, {channels})',
                     'dtype: DT_INT64', 'dtype: DT_FLOAT'):
        assert expected in shown['vocoder'], expected
    for expected in ("signature_def['generate']:", "signature_def['generate_batch']:",
                     "inputs['speaker'] tensor_info:", "inputs['speakers'] tensor_info:",
                     'dtype: DT_INT32', 'shape: (-1)'):
        assert expected in shown['speakers'], expected
    assert 'vocode' not in shown['speakers'] and 'generate' not in shown['vocoder']


# A refusal after TensorFlow has read a checkpoint runs as the tool, so that its native logs
# count against the one line.
@pytest.mark.parametrize('case', ['exists', 'no_checkpoint', 'embeddings'])
def test_export_refuses_in_one_line_and_writes_nothing(case, speaker_files, tmp_path,
                                                       tmp_path_factory, capsys):
    out = tmp_path / 'model'
    checkpoint, message = {
        'exists': (speaker_files['prefix'], 'exists: give a new directory'),
        'no_checkpoint': (tmp_path / 'nothing', 'no checkpoint'),
        # Speakers without a table: its callers pass embeddings, which no signature takes.
        'embeddings': (save_checkpoint(tmp_path_factory.mktemp('embeddings'),
                                       describe(SMALL, GC_CHANNELS)), 'without gc_cardinality'),
    }[case]
    if case == 'exists':
        out.mkdir()
        (out / 'kept').write_text('mine')
    if case == 'embeddings':
        result = export(checkpoint, out)
    else:
        from wavenet.export import main
        result = run_in_process('export', main, [checkpoint, out], capsys)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert sorted(os.listdir(tmp_path)) == (['model'] if case == 'exists' else [])
    if case == 'exists':
        assert os.listdir(out) == ['kept']
