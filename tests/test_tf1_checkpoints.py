"""Checkpoints of the original TF 1 toolkit, written here the way it wrote
them -- ``tf.compat.v1`` graph variables under its names, biases under TF's default names,
``tf.compat.v1.train.Saver`` -- and loaded through the library, generate.py, train.py and
``python -m wavenet.convert_tf1``; and the optimizers against TF 1's update rules in NumPy."""
import contextlib
import hashlib
import io
import json
import os
import subprocess

import numpy as np
import pytest
import soundfile
import tensorflow as tf
from helpers import (
    GENERATE,
    OPTIONAL_DEFAULTS,
    ORIGINAL_STEP,
    TRAIN,
    describe,
    printed_steps,
    run_tool,
    write_corpus,
    write_original_checkpoint,
)

from wavenet import checkpoints, convert_tf1, optimizer_factory
from wavenet.params import build_model

STEP = ORIGINAL_STEP
BASE = dict(filter_width=2, sample_rate=16000, dilations=[1, 2, 4, 1, 2], residual_channels=8,
            dilation_channels=6, quantization_channels=32, skip_channels=10, use_biases=False,
            scalar_input=False, initial_filter_width=4)
VARIANTS = {
    'plain': (BASE, None, None),
    'biases': (dict(BASE, use_biases=True), None, None),
    'speakers': (dict(BASE, use_biases=True), 3, 5),
    'filter_width_3': (dict(BASE, filter_width=3, use_biases=True), None, None),
    'scalar_input': (dict(BASE, scalar_input=True, use_biases=True), None, None),
}


def given_directly(params, gc_channels, gc_cardinality, values):
    """The network with ``values`` assigned by hand, from the original's names."""
    net = build_model(describe(params, gc_channels, gc_cardinality))
    net.causal_layer.kernel.assign(values['wavenet/causal_layer/filter'])
    for i, block in enumerate(net.dilated_stack):
        scope = f'wavenet/dilated_stack/layer{i}/'
        for name in ('filter', 'gate', 'dense', 'skip') + (('gc_filter', 'gc_gate')
                                                          if gc_channels else ()):
            getattr(block, name).assign(values[scope + name])
        if params['use_biases']:
            block.filter_bias.assign(values[scope + 'Variable'])
            block.gate_bias.assign(values[scope + 'Variable_1'])
            block.dense_bias.assign(values[scope + 'Variable_2'])
            block.skip_bias.assign(values[scope + 'Variable_3'])
    post = net.postprocessing
    post.postprocess1.assign(values['wavenet/postprocessing/postprocess1'])
    post.postprocess2.assign(values['wavenet/postprocessing/postprocess2'])
    if params['use_biases']:
        post.postprocess1_bias.assign(values['wavenet/postprocessing/Variable'])
        post.postprocess2_bias.assign(values['wavenet/postprocessing/Variable_1'])
    if gc_channels:
        net.gc_embedding.assign(values['wavenet/embeddings/gc_embedding'])
    return net


def probabilities(net, gc_channels):
    codes = np.random.default_rng(1).integers(0, net.quantization_channels, (2, 40))
    return net.predict_proba(codes, [1, 4] if gc_channels else None).numpy()


@pytest.mark.parametrize('variant', list(VARIANTS))
def test_original_checkpoint_loads_into_the_same_network(variant, tmp_path):
    params, gc_channels, gc_cardinality = VARIANTS[variant]
    prefix, values = write_original_checkpoint(tmp_path, params, gc_channels, gc_cardinality)
    assert checkpoints.is_tf1_checkpoint(prefix)
    assert checkpoints.find_checkpoint(str(tmp_path)) == prefix
    checkpoints.check_checkpoint(prefix, describe(params, gc_channels, gc_cardinality), 'params')
    net = build_model(describe(params, gc_channels, gc_cardinality))
    checkpoints.restore_model(net, prefix)
    expected = probabilities(given_directly(params, gc_channels, gc_cardinality, values),
                             gc_channels)
    np.testing.assert_allclose(probabilities(net, gc_channels), expected, atol=1e-6)
    # and through a conversion into this toolkit's format
    out = tmp_path / 'converted'
    run = convert(prefix, params, tmp_path, gc_channels, gc_cardinality, out)
    assert run.returncode == 0, run.stderr
    converted = build_model(describe(params, gc_channels, gc_cardinality))
    checkpoints.restore_model(converted, str(out / f'model.ckpt-{STEP}'))
    np.testing.assert_allclose(probabilities(converted, gc_channels), expected, atol=1e-6)
    description = json.loads((out / 'wavenet_params.json').read_text())
    assert description == dict(params, gc_channels=gc_channels, gc_cardinality=gc_cardinality,
                               **OPTIONAL_DEFAULTS)


def convert(prefix, params, tmp_path, gc_channels=None, gc_cardinality=None, out=None,
            extra=()):
    """``python -m wavenet.convert_tf1``, run in this process (its ``main``)."""
    (tmp_path / 'params.json').write_text(json.dumps(params))
    flags = [f'--wavenet_params={tmp_path / "params.json"}', f'--logdir={out}', *extra]
    if gc_channels:
        flags += [f'--gc_channels={gc_channels}', f'--gc_cardinality={gc_cardinality}']
    stdout, stderr = io.StringIO(), io.StringIO()
    returncode = 0
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            convert_tf1.main([str(prefix), *flags])
        except SystemExit as e:
            returncode = e.code
    return subprocess.CompletedProcess([], returncode, stdout.getvalue(), stderr.getvalue())


def generate(checkpoint, cwd, *flags):
    return run_tool(GENERATE, checkpoint, '--samples=300', '--seed=3', *flags, cwd=cwd)


def test_generate_and_convert_through_the_command_line(tmp_path):
    params, gc_channels, gc_cardinality = VARIANTS['speakers']
    prefix, _ = write_original_checkpoint(tmp_path, params, gc_channels, gc_cardinality)
    (tmp_path / 'params.json').write_text(json.dumps(params))
    direct = generate(prefix, tmp_path, f'--wavenet_params={tmp_path}/params.json',
                      '--gc_channels=3', '--gc_cardinality=5', '--gc_id=4',
                      '--wav_out_path=direct.wav')
    assert direct.returncode == 0, direct.stderr
    run = convert(prefix, params, tmp_path, gc_channels, gc_cardinality, tmp_path / 'out')
    assert run.returncode == 0, run.stderr
    assert f'model.ckpt-{STEP}' in run.stdout
    # After conversion generate.py needs no flags but the speaker, and draws the same.
    converted = generate(tmp_path / 'out', tmp_path, '--gc_id=4', '--wav_out_path=conv.wav')
    assert converted.returncode == 0, converted.stderr
    a, rate = soundfile.read(tmp_path / 'direct.wav')
    b, _ = soundfile.read(tmp_path / 'conv.wav')
    assert rate == 16000 and len(a) == 300 and np.array_equal(a, b)


def digest(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in os.listdir(folder) if name.startswith('model.ckpt-')}


def train(cwd, params_path, *flags):
    return run_tool(TRAIN, f'--data_dir={corpus_dir(cwd)}', f'--wavenet_params={params_path}',
                    '--sample_size=300', '--silence_threshold=0', *flags, cwd=cwd)


def corpus_dir(cwd):
    return cwd / 'corpus'


def test_training_continues_beside_an_original_checkpoint_and_after_conversion(tmp_path):
    params = dict(BASE, use_biases=True, quantization_channels=256)
    write_corpus(tmp_path / 'corpus')
    old = tmp_path / 'old'
    prefix, values = write_original_checkpoint(old, params)
    (tmp_path / 'params.json').write_text(json.dumps(params))
    before = digest(old)
    # Continuing in the original's folder: step N + 1 on, new checkpoints beside the old.
    run = train(tmp_path, tmp_path / 'params.json', f'--logdir={old}', f'--num_steps={STEP + 4}',
                '--checkpoint_every=2', '--max_checkpoints=1', '--learning_rate=1e-9')
    assert run.returncode == 0, run.stderr
    assert 'the optimizer starts fresh' in run.stdout
    assert [s for s, _ in printed_steps(run.stdout)] == list(range(STEP + 1, STEP + 4))
    after = digest(old)
    assert {k: after[k] for k in before} == before  # the original's files are untouched
    assert tf.train.latest_checkpoint(str(old)).endswith(f'model.ckpt-{STEP + 3}')
    # A learning rate of 1e-9 leaves the weights where the original left them.
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(old)))
    np.testing.assert_allclose(
        reader.get_tensor('model/layer2/gate/.ATTRIBUTES/VARIABLE_VALUE'),
        values['wavenet/dilated_stack/layer2/gate'], atol=1e-6)
    # --restore_from the original's folder starts a new training at step 0 elsewhere.
    run = train(tmp_path, tmp_path / 'params.json', f'--restore_from={old}',
                f'--logdir_root={tmp_path / "runs"}', '--num_steps=2')
    assert run.returncode == 0, run.stderr
    assert [s for s, _ in printed_steps(run.stdout)] == [0, 1]
    # A converted checkpoint resumes at N + 1 with the description beside it.
    other = tmp_path / 'other'
    prefix, _ = write_original_checkpoint(other, params, seed=4)
    assert convert(prefix, params, tmp_path, out=tmp_path / 'converted').returncode == 0
    run = train(tmp_path, tmp_path / 'params.json', f'--logdir={tmp_path / "converted"}',
                f'--num_steps={STEP + 3}')
    assert run.returncode == 0, run.stderr
    assert [s for s, _ in printed_steps(run.stdout)] == [STEP + 1, STEP + 2]


def drop(name):
    def change(scopes):
        for scope, weights in scopes:
            weights[:] = [(n, s) for n, s in weights if f'{scope}/{n}' != name]
    return change


def reshape(name, shape):
    def change(scopes):
        for scope, weights in scopes:
            weights[:] = [(n, shape if f'{scope}/{n}' == name else s) for n, s in weights]
    return change


def add_bias(scope_name):
    def change(scopes):
        for scope, weights in scopes:
            if scope == scope_name:
                weights.append((None, [3]))
    return change


@pytest.mark.parametrize('change, params_change, message', [
    (drop('dilated_stack/layer2/gate'), {},
     'variable wavenet/dilated_stack/layer2/gate is missing'),
    (add_bias('dilated_stack/layer1'), {},
     'variable wavenet/dilated_stack/layer1/Variable_4 is not part of the network described'),
    (reshape('dilated_stack/layer3/dense', [1, 6, 4]), {},
     'variable wavenet/dilated_stack/layer3/dense has shape [1, 6, 4], the network described '
     'has [1, 6, 8]: residual_channels is probably wrong'),
    (None, {'residual_channels': 16},
     'holds a network with residual_channels = 8, but '),
    (None, {'use_biases': False}, 'holds a network with use_biases = True, but '),
    (None, {'output_distribution': 'mixture_of_logistics', 'scalar_input': True,
            'quantization_channels': 65536},
     'is a checkpoint of the original toolkit, whose networks have the softmax output only'),
])
def test_a_checkpoint_unlike_the_description_is_a_one_line_error(generate_main, tmp_path,
                                                                 monkeypatch, change,
                                                                 params_change, message):
    params = dict(BASE, use_biases=True)
    prefix, _ = write_original_checkpoint(tmp_path, params, change=change)
    described = dict(params, **params_change)
    (tmp_path / 'params.json').write_text(json.dumps(described))
    results = [convert(prefix, described, tmp_path, out=tmp_path / 'out')]
    if 'layer2/gate' in message or 'residual_channels = 8' in message or 'softmax' in message:
        # generate.py loads through the same function; two cases show it reports the same.
        monkeypatch.chdir(tmp_path)
        results.append(generate_main(prefix, '--samples=300', '--seed=3',
                                     f'--wavenet_params={tmp_path}/params.json'))
    for result in results:
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and result.stderr.count('\n') == 1, result.stderr
    assert not (tmp_path / 'out').exists()


def test_bad_conversion_inputs_are_one_line_errors(tmp_path):
    (tmp_path / 'not_a_checkpoint.index').write_text('hello')
    prefix, _ = write_original_checkpoint(tmp_path / 'old', BASE)
    (tmp_path / 'busy').mkdir()
    ours = build_model(describe(BASE))
    tf.train.Checkpoint(model=ours).write(str(tmp_path / 'busy' / 'model.ckpt-1'))
    cases = [
        (tmp_path / 'not_a_checkpoint', [], 'cannot read checkpoint'),
        (prefix, ['--gc_channels=3'], '--gc_channels and --gc_cardinality go together'),
        (tmp_path / 'busy' / 'model.ckpt-1', [], 'is not a checkpoint of the original toolkit'),
    ]
    for checkpoint, extra, message in cases:
        result = convert(checkpoint, BASE, tmp_path, out=tmp_path / 'out', extra=extra)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert result.stderr.count('\n') == 1
    tf.train.CheckpointManager(tf.train.Checkpoint(model=ours), str(tmp_path / 'full'),
                               max_to_keep=1).save()
    result = convert(prefix, BASE, tmp_path, out=tmp_path / 'full')
    assert result.returncode == 2 and 'already holds checkpoints' in result.stderr


# -- the optimizers take TF 1's steps ---------------------------------------------------------

def tf1_steps(name, gradients, start, learning_rate, momentum):
    """The weights after each of TF 1's updates (its optimizers' documented rules)."""
    w = start.astype(np.float64)
    slots = {'accumulation': np.zeros_like(w), 'm': np.zeros_like(w), 'v': np.zeros_like(w),
             'ms': np.ones_like(w), 'mom': np.zeros_like(w)}
    out = []
    for t, g in enumerate(gradients, start=1):
        if name == 'sgd':  # MomentumOptimizer
            slots['accumulation'] = momentum * slots['accumulation'] + g
            w = w - learning_rate * slots['accumulation']
        elif name == 'adam':  # AdamOptimizer(epsilon=1e-4)
            slots['m'] = 0.9 * slots['m'] + 0.1 * g
            slots['v'] = 0.999 * slots['v'] + 0.001 * g * g
            rate = learning_rate * np.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            w = w - rate * slots['m'] / (np.sqrt(slots['v']) + 1e-4)
        else:  # RMSPropOptimizer(decay=0.9, epsilon=1e-5): the mean square starts at 1
            slots['ms'] = 0.9 * slots['ms'] + 0.1 * g * g
            slots['mom'] = momentum * slots['mom'] + learning_rate * g / np.sqrt(
                slots['ms'] + 1e-5)
            w = w - slots['mom']
        out.append(w)
    return out


@pytest.mark.parametrize('name', ['sgd', 'adam', 'rmsprop'])
@pytest.mark.parametrize('momentum', [0.0, 0.9])
def test_optimizers_take_the_original_steps(name, momentum):
    rng = np.random.default_rng(5)
    start = rng.normal(size=(3, 4)).astype(np.float32)
    gradients = [rng.normal(0, 0.5, (3, 4)).astype(np.float32) for _ in range(20)]
    variable = tf.Variable(start)
    optimizer = optimizer_factory[name](0.01, momentum)
    expected = tf1_steps(name, gradients, start, 0.01, momentum)
    for g, want in zip(gradients, expected):
        optimizer.apply_gradients([(tf.constant(g), variable)])
        np.testing.assert_allclose(variable.numpy(), want, atol=1e-6, rtol=0)


def test_rmsprop_state_restores_from_a_checkpoint(tmp_path):
    variable = tf.Variable(np.ones((2, 2), np.float32))
    optimizer = optimizer_factory['rmsprop'](0.01, 0.9)
    for g in (0.5, -0.3, 0.2):
        optimizer.apply_gradients([(tf.fill([2, 2], g), variable)])
    prefix = tf.train.Checkpoint(v=variable, optimizer=optimizer).save(str(tmp_path / 'c'))
    fresh_variable = tf.Variable(np.zeros((2, 2), np.float32))
    fresh = optimizer_factory['rmsprop'](0.01, 0.9)
    fresh.build([fresh_variable])
    tf.train.Checkpoint(v=fresh_variable, optimizer=fresh).restore(
        prefix).assert_existing_objects_matched()
    for a, b in zip(fresh.variables, optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # ... and the restored mean square is the trained one, not the starting ones.
    assert not np.allclose(fresh._velocities[0].numpy(), 1)
