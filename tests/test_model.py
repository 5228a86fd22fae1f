"""WaveNetModel against an independent NumPy network, and its three prediction paths."""
import numpy as np
import pytest
import tensorflow as tf

from wavenet import WaveNetModel, mu_law_encode
from wavenet.features import SILENCE

SMALL = dict(batch_size=1, dilations=[1, 2, 4, 8, 16, 32, 64, 128, 256], filter_width=2,
             residual_channels=16, dilation_channels=16, quantization_channels=128,
             skip_channels=32)


def make_net(**overrides):
    net = WaveNetModel(**dict(SMALL, **overrides))
    # Zero biases would hide a bias applied in the wrong place, and averaging smoothing
    # kernels an asymmetry in the upsampling.
    for variable in net.trainable_variables:
        if 'bias' in variable.path or 'smooth' in variable.path:
            variable.assign(np.random.normal(0, 0.2, variable.shape))
    return net


# -- an independent NumPy WaveNet, written the way the original TF 1 graph was -----------

def np_causal_conv(x, kernel, dilation):
    """x [B, T, C_in], kernel [K, C_in, C_out]: out[t] = sum_k x[t + k*d] @ kernel[k]."""
    width = kernel.shape[0]
    out_len = x.shape[1] - (width - 1) * dilation
    out = np.zeros((x.shape[0], out_len, kernel.shape[2]))
    for t in range(out_len):
        for k in range(width):
            out[:, t] += x[:, t + k * dilation] @ kernel[k]
    return out


def np_softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_upsample(net, frames):
    """The upsampling docs/vocoder.md describes, written out: rescale, then per scale repeat
    each row, mirror the edges and convolve every band with the scale's kernel."""
    rows = -2 + 4 * (np.asarray(frames, np.float64) - SILENCE) / (0 - SILENCE)
    for i, scale in enumerate(net.lc_upsampling.scales):
        kernel = getattr(net.lc_upsampling, f'smooth{i}').numpy()
        rows = np.repeat(rows, scale, axis=1)
        mirrored = np.pad(rows, [(0, 0), (scale, scale), (0, 0)], mode='symmetric')
        rows = sum(kernel[k] * mirrored[:, k:k + rows.shape[1]] for k in range(2 * scale + 1))
    return rows


def np_network(net, network_input, gc_ids=None, lc_rows=None):
    """Logits for the last T - receptive_field + 1 steps, as the original computed them;
    ``lc_rows`` [B, T, C]: the upsampled conditioning of each input position."""
    v = lambda variable: variable.numpy().astype(np.float64)  # noqa: E731
    gc = None if gc_ids is None else v(net.gc_embedding)[np.asarray(gc_ids)][:, None, :]
    output_width = network_input.shape[1] - net.receptive_field + 1
    current = np_causal_conv(network_input, v(net.causal_layer.kernel), 1)
    skips = []
    for block in net.dilated_stack:
        conv_filter = np_causal_conv(current, v(block.filter), block.dilation)
        conv_gate = np_causal_conv(current, v(block.gate), block.dilation)
        if gc is not None:
            conv_filter = conv_filter + gc @ v(block.gc_filter)[0]
            conv_gate = conv_gate + gc @ v(block.gc_gate)[0]
        if lc_rows is not None:
            conv_filter = conv_filter + (lc_rows @ v(block.lc_filter)[0])[:, -len(conv_filter[0]):]
            conv_gate = conv_gate + (lc_rows @ v(block.lc_gate)[0])[:, -len(conv_gate[0]):]
        if net.use_biases:
            conv_filter = conv_filter + v(block.filter_bias)
            conv_gate = conv_gate + v(block.gate_bias)
        out = np.tanh(conv_filter) / (1 + np.exp(-conv_gate))
        transformed = out @ v(block.dense)[0]
        skip = out[:, -output_width:] @ v(block.skip)[0]
        if net.use_biases:
            transformed = transformed + v(block.dense_bias)
            skip = skip + v(block.skip_bias)
        skips.append(skip)
        current = current[:, -transformed.shape[1]:] + transformed
    post = net.postprocessing
    hidden = np.maximum(sum(skips), 0) @ v(post.postprocess1)[0]
    if net.use_biases:
        hidden = hidden + v(post.postprocess1_bias)
    logits = np.maximum(hidden, 0) @ v(post.postprocess2)[0]
    if net.use_biases:
        logits = logits + v(post.postprocess2_bias)
    return logits


def np_loss(net, audio, gc_ids=None, frames=None, heard=None):
    """The mean cross-entropy of predicting ``audio``'s codes from ``heard`` (what the
    network reads: ``audio`` itself unless given)."""
    q = net.quantization_channels
    codes = mu_law_encode(audio, q).numpy()
    heard = audio if heard is None else heard
    network_input = heard[..., None] if net.scalar_input else \
        np.eye(q)[mu_law_encode(heard, q).numpy()]
    # Input t predicts sample t + 1, and is conditioned as that sample is.
    lc_rows = None if frames is None else np_upsample(net, frames)[:, 1:audio.shape[1]]
    logits = np_network(net, network_input[:, :-1].astype(np.float64), gc_ids, lc_rows)
    targets = codes[:, net.receptive_field:]
    log_proba = np.log(np_softmax(logits))
    return -np.mean(np.take_along_axis(log_proba, targets[..., None], axis=-1))


TINY = dict(batch_size=2, dilations=[1, 2, 4, 1, 3], residual_channels=4,
            dilation_channels=5, skip_channels=6, quantization_channels=16)


@pytest.mark.parametrize('variant', [
    dict(filter_width=2),
    dict(filter_width=2, use_biases=True),
    dict(filter_width=3, use_biases=True),
    dict(filter_width=2, use_biases=True, global_condition_channels=3,
         global_condition_cardinality=4),
    dict(filter_width=2, use_biases=True, global_condition_channels=4,
         global_condition_cardinality=4),
    dict(filter_width=2, use_biases=True, scalar_input=True, initial_filter_width=4),
], ids=['plain', 'biases', 'width3', 'gc', 'gc_square', 'scalar'])
def test_loss_equals_numpy_network(variant):
    net = make_net(**dict(TINY, **variant))
    gc_ids = [3, 1] if 'global_condition_channels' in variant else None
    audio = (0.8 * np.random.uniform(-1, 1, (2, net.receptive_field + 40))).astype(np.float32)
    loss = net.loss(audio, gc_ids).numpy()
    assert loss == pytest.approx(np_loss(net, audio, gc_ids), rel=1e-5)
    # [B, T, 1] input and [B, 1] ids are accepted as in the original.
    ids_2d = None if gc_ids is None else np.array(gc_ids)[:, None]
    assert net.loss(audio[..., None], ids_2d).numpy() == pytest.approx(loss, rel=1e-6)


@pytest.mark.parametrize('scalar_input', [False, True], ids=['one_hot', 'scalar'])
def test_input_noise_reaches_what_the_network_reads_not_what_it_predicts(scalar_input):
    net = make_net(**dict(TINY, filter_width=2, use_biases=True, scalar_input=scalar_input,
                          initial_filter_width=4))
    audio = (0.8 * np.random.uniform(-1, 1, (2, net.receptive_field + 40))).astype(np.float32)
    tf.random.set_seed(5)
    loss = net.loss(audio, input_noise=0.2).numpy()
    tf.random.set_seed(5)  # the same draw, made here
    noise = tf.random.normal(audio[..., None].shape, stddev=0.2).numpy()[..., 0]
    assert loss == pytest.approx(np_loss(net, audio, heard=audio + noise), rel=1e-5)
    assert abs(loss - net.loss(audio).numpy()) > 1e-3


LC = dict(local_condition_channels=3, lc_upsample_scales=[2, 3])


@pytest.mark.parametrize('variant', [
    dict(filter_width=2, **LC),
    dict(filter_width=3, use_biases=True, global_condition_channels=3,
         global_condition_cardinality=4, **LC),
    dict(filter_width=2, use_biases=True, local_condition_channels=2,
         lc_upsample_scales=[4]),
], ids=['lc', 'width3_gc_lc', 'one_scale'])
def test_conditioned_loss_equals_numpy_network(variant):
    net = make_net(**dict(TINY, **variant))
    gc_ids = [3, 1] if 'global_condition_channels' in variant else None
    length = net.receptive_field + 40
    hop = net.lc_hop_length
    audio = (0.8 * np.random.uniform(-1, 1, (2, length))).astype(np.float32)
    # Frames of log-mel-like values, covering the audio (the last one only partly).
    frames = np.random.uniform(-11, 2, (2, -(-length // hop), variant['local_condition_channels']))
    loss = net.loss(audio, gc_ids, local_condition_batch=frames.astype(np.float32)).numpy()
    assert loss == pytest.approx(np_loss(net, audio, gc_ids, frames), rel=1e-5)
    # The conditioning matters: other frames, another loss.
    other = net.loss(audio, gc_ids, local_condition_batch=frames[::-1].astype(np.float32))
    assert abs(other.numpy() - loss) > 1e-4


def test_upsampling_equals_numpy_and_keeps_frames_in_place():
    net = make_net(**dict(TINY, filter_width=2, local_condition_channels=4,
                          lc_upsample_scales=[2, 4, 2]))
    frames = np.random.uniform(-11, 2, (2, 9, 4)).astype(np.float32)
    rows = net.upsample_local_condition(frames).numpy()
    assert rows.shape == (2, 9 * 16, 4)
    np.testing.assert_allclose(rows, np_upsample(net, frames), atol=1e-5)
    # A change in frame 4 reaches only the rows of frame 4 and the kernels' reach (one
    # frame of the scale before each stretch) on either side.
    changed = frames.copy()
    changed[:, 4] += 1
    moved = np.any(net.upsample_local_condition(changed).numpy() != rows, axis=(0, 2))
    # Each scale's kernel reaches `scale` rows at its own rate, stretched by the later ones.
    reach = 2 * (4 * 2) + 4 * 2 + 2
    assert moved[4 * 16:5 * 16].all()
    assert not moved[:4 * 16 - reach].any() and not moved[5 * 16 + reach:].any()


def test_local_conditioning_errors():
    net = make_net(**dict(TINY, filter_width=2, **LC))
    audio = np.zeros((1, 60), np.float32)
    with pytest.raises(ValueError, match='locally conditioned'):
        net.loss(audio)
    with pytest.raises(ValueError, match='4 channels per frame, the network expects 3'):
        net.loss(audio, local_condition_batch=np.zeros((1, 10, 4), np.float32))
    with pytest.raises(ValueError, match='fewer than the 60'):
        net.loss(audio, local_condition_batch=np.zeros((1, 9, 3), np.float32))
    plain = make_net(**dict(TINY, filter_width=2))
    with pytest.raises(ValueError, match='without it'):
        plain.loss(audio, local_condition_batch=np.zeros((1, 10, 3), np.float32))
    with pytest.raises(ValueError, match='lc_upsample_scales'):
        WaveNetModel(**dict(TINY, filter_width=2, local_condition_channels=3))


def test_predict_proba_equals_numpy_network():
    net = make_net(**dict(TINY, filter_width=3, use_biases=True))
    codes = np.random.randint(0, 16, size=100)
    logits = np_network(net, np.eye(16)[codes][None, -net.receptive_field:])
    expected = np_softmax(logits[0, -1])
    proba = net.predict_proba(codes)
    assert proba.dtype == tf.float32 and proba.shape == (16,)
    np.testing.assert_allclose(proba.numpy(), expected, rtol=1e-5, atol=1e-7)
    batched = net.predict_proba(np.stack([codes, codes[::-1]]))
    assert batched.shape == (2, 16)
    np.testing.assert_allclose(batched[0].numpy(), expected, rtol=1e-5, atol=1e-7)


def test_l2_regularization_covers_non_bias_weights():
    net = make_net(**dict(TINY, use_biases=True, filter_width=2))
    weights = [v.numpy() for v in net.trainable_variables if 'bias' not in v.path]
    biases = [v for v in net.trainable_variables if 'bias' in v.path]
    assert len(biases) == 4 * 5 + 2
    expected_l2 = sum(np.sum(w.astype(np.float64) ** 2) / 2 for w in weights)
    assert net.l2_loss().numpy() == pytest.approx(expected_l2, rel=1e-5)
    audio = np.random.uniform(-0.5, 0.5, (1, 200)).astype(np.float32)
    plain = net.loss(audio).numpy()
    assert net.loss(audio, l2_regularization_strength=0.01).numpy() == pytest.approx(
        plain + 0.01 * expected_l2, rel=1e-5)


def test_receptive_field():
    dilations = [2 ** i for i in range(10)] * 5
    assert WaveNetModel.calculate_receptive_field(2, dilations, False, 32) == 5117
    assert WaveNetModel.calculate_receptive_field(2, dilations, True, 32) == 5147
    assert WaveNetModel.calculate_receptive_field(3, [1, 2, 4], False, 32) == 17
    assert make_net().receptive_field == 513


def test_weight_initialization():
    net = WaveNetModel(**dict(SMALL, use_biases=True, global_condition_channels=5,
                              global_condition_cardinality=5))
    np.testing.assert_array_equal(net.gc_embedding.numpy(), np.eye(5))
    for variable in net.trainable_variables:
        if 'bias' in variable.path:
            assert not np.any(variable.numpy())
    # Glorot-uniform with the kernel width in both fans.
    kernel = net.dilated_stack[0].filter.numpy()
    limit = np.sqrt(6 / (2 * 16 + 2 * 16))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.8 * limit
    rectangular = WaveNetModel(**dict(SMALL, global_condition_channels=5,
                                      global_condition_cardinality=7))
    assert not np.allclose(rectangular.gc_embedding.numpy()[:5], np.eye(5))


def test_every_weight_gets_a_gradient():
    net = make_net(**dict(TINY, use_biases=True, global_condition_channels=3,
                          global_condition_cardinality=4))
    audio = np.random.uniform(-0.5, 0.5, (2, 100)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = net.loss(audio, [0, 2])
    gradients = tape.gradient(loss, net.trainable_variables)
    # As in the original, the last layer's residual output feeds nothing.
    no_gradient = {'layer4/dense', 'layer4/dense_bias'}
    for variable, gradient in zip(net.trainable_variables, gradients):
        assert (gradient is None) == (variable.path in no_gradient), variable.path
    # Speakers 1 and 3 were not in the batch: their embedding rows get no gradient.
    embedding_gradient = tf.convert_to_tensor(gradients[net.trainable_variables.index(
        net.gc_embedding)]).numpy()
    assert np.any(embedding_gradient[[0, 2]]) and not np.any(embedding_gradient[[1, 3]])


def test_conditioned_network_requires_speaker():
    net = make_net(global_condition_channels=3, global_condition_cardinality=3)
    with pytest.raises(ValueError, match='global_condition'):
        net.loss(np.zeros((1, 600), np.float32))


# -- incremental vs. full window ----------------------------------------------------------

@pytest.mark.parametrize('variant', [
    dict(),
    dict(use_biases=True),
    dict(use_biases=True, global_condition_channels=8, global_condition_cardinality=3),
    dict(filter_width=3, use_biases=True),
    dict(use_biases=True, scalar_input=True, initial_filter_width=4),
    dict(filter_width=3, use_biases=True, scalar_input=True, initial_filter_width=5,
         global_condition_channels=3, global_condition_cardinality=3),
], ids=['plain', 'biases', 'gc', 'width3', 'scalar', 'width3_scalar_gc'])
def test_incremental_equals_full_window(variant):
    net = make_net(**variant)
    # More than a receptive field (1054 codes for width 3), so both paths see every input
    # the prediction depends on and must agree to float rounding.
    data = np.random.randint(128, size=net.receptive_field + 50)
    gc = 2 if 'global_condition_channels' in variant else None
    net.reset_incremental_state()
    for code in data:
        proba_fast = net.predict_proba_incremental(code, gc)
    proba = net.predict_proba(data, gc)
    assert proba_fast.shape == (128,)
    np.testing.assert_allclose(proba_fast.numpy(), proba.numpy(), rtol=0, atol=2e-7)
    assert np.sum(proba.numpy()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize('variant', [
    dict(use_biases=True),
    dict(filter_width=3, use_biases=True),
    dict(use_biases=True, global_condition_channels=8, global_condition_cardinality=3),
    dict(filter_width=3, use_biases=True, global_condition_channels=3,
         global_condition_cardinality=3),
], ids=['width2', 'width3', 'width2_gc', 'width3_gc'])
def test_conditioned_incremental_equals_full_window(variant):
    """Local conditioning on every path: pushing codes one by one with each sample's row,
    priming in one pass, and predict_proba over frames agree."""
    net = make_net(**dict(variant, dilations=[1, 2, 4, 8, 16, 1, 2, 4, 8, 16],
                          local_condition_channels=5, lc_upsample_scales=[2, 2, 3]))
    samples = net.receptive_field + 150  # the paths agree once a receptive field was pushed
    frames = np.random.uniform(-11, 2, (1, -(-(samples + 2) // 12), 5)).astype(np.float32)
    rows = net.upsample_local_condition(frames)
    data = np.random.randint(128, size=samples)
    gc = 2 if 'global_condition_channels' in variant else None
    net.reset_incremental_state()
    for t, code in enumerate(data):
        proba_fast = net.predict_proba_incremental(code, gc, rows[0, t + 1])
    proba = net.predict_proba(data, gc, frames[0])
    np.testing.assert_allclose(proba_fast.numpy(), proba.numpy(), atol=1e-6)
    primed = net.prime_incremental_state(data, gc, rows[0, 1:samples + 1])
    np.testing.assert_allclose(primed.numpy(), proba.numpy(), atol=1e-6)
    # The state the priming left behind continues like the step-by-step one.
    after = net.predict_proba_incremental(7, gc, rows[0, samples + 1])
    window = slice(samples + 2 - net.receptive_field, samples + 2)  # rows of inputs t: t + 1
    full = np_softmax(np_network(
        net, np.eye(128)[np.append(data, 7)][None, -net.receptive_field:],
        None if gc is None else [gc], rows.numpy()[:, window])[0, -1])
    np.testing.assert_allclose(after.numpy(), full, atol=1e-5)


def test_incremental_batch_and_reset():
    net = make_net(use_biases=True, global_condition_channels=4, global_condition_cardinality=3)
    data = np.random.randint(128, size=(2, 600))
    gc = np.array([0, 2])
    net.reset_incremental_state()
    for step in range(data.shape[1]):
        proba_fast = net.predict_proba_incremental(data[:, step], gc)
    assert proba_fast.shape == (2, 128)
    np.testing.assert_allclose(proba_fast.numpy(), net.predict_proba(data, gc).numpy(), atol=1e-5)
    # After a reset the queues are zeros again: the same pushes give the same answers.
    net.reset_incremental_state()
    first = net.predict_proba_incremental(data[:, 0], gc).numpy()
    net.reset_incremental_state()
    np.testing.assert_array_equal(net.predict_proba_incremental(data[:, 0], gc).numpy(), first)
