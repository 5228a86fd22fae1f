"""wavenet_params.json: the defaults, one-line errors, the description beside checkpoints."""
import json
import os

import numpy as np
import pytest
from helpers import OPTIONAL_DEFAULTS, ROOT

from wavenet.checkpoints import restore_model
from wavenet.params import NetworkDescription, build_model

load_params = NetworkDescription.load
ORIGINAL_DEFAULTS = {
    'filter_width': 2, 'sample_rate': 16000, 'dilations': [2 ** i for i in range(10)] * 5,
    'residual_channels': 32, 'dilation_channels': 32, 'quantization_channels': 256,
    'skip_channels': 512, 'use_biases': True, 'scalar_input': False, 'initial_filter_width': 32,
}


def test_default_params_are_the_originals():
    params = load_params(os.path.join(ROOT, 'wavenet_params.json'))
    # No local conditioning fields in the file: a plain WaveNet, with the lc defaults.
    assert params.as_json() == dict(ORIGINAL_DEFAULTS, **OPTIONAL_DEFAULTS, gc_channels=None,
                                    gc_cardinality=None)
    assert params.lc_channels is None and params.lc_n_fft == 1024
    assert params.receptive_field == 5117
    assert build_model(params).receptive_field == 5117


@pytest.mark.parametrize('change, message', [
    (dict(filter_width=None), 'missing "filter_width"'),
    (dict(residual_channels='32'), '"residual_channels" must be a positive integer'),
    (dict(skip_channels=0), '"skip_channels" must be a positive integer'),
    (dict(use_biases='yes'), '"use_biases" must be true or false'),
    (dict(quantization_channels=1), '"quantization_channels" must be at least 2'),
    (dict(dilations=[]), '"dilations" must be a non-empty list'),
    (dict(dilations=[1, 0]), '"dilations" must be a non-empty list'),
    (dict(dilations=[1, 2 ** 40]), f'"dilations" give a receptive field of {2 ** 40 + 3} '
                                   'samples (1.91e+04 hours at 16000 Hz), whose network input '
                                   'alone needs 1.05e+06 GiB, more than this machine'),
    (dict(input_noise=-0.1), '"input_noise" must be a number in [0, 1)'),
    (dict(input_noise='a little'), '"input_noise" must be a number in [0, 1)'),
    (dict(output_distribution='gaussian'), '"output_distribution" must be one of softmax, '
                                           'mixture_of_logistics'),
    (dict(output_distribution='mixture_of_logistics', quantization_channels=65536),
     '"mixture_of_logistics" needs "scalar_input": true'),
    (dict(output_distribution='mixture_of_logistics', scalar_input=True),
     '"quantization_channels" must be 65536, got 256'),
    (dict(mixture_components=0), '"mixture_components" must be a positive integer'),
    (dict(log_scale_min='low'), '"log_scale_min" must be a number'),
])
def test_bad_params_name_the_file_and_field(tmp_path, change, message):
    params = dict(ORIGINAL_DEFAULTS, **change)
    params = {key: value for key, value in params.items() if value is not None}
    path = tmp_path / 'params.json'
    path.write_text(json.dumps(params))
    with pytest.raises(ValueError) as error:
        load_params(str(path))
    assert str(error.value).startswith(f'{path}: ') and message in str(error.value)
    assert '\n' not in str(error.value)


def test_unreadable_params(tmp_path):
    with pytest.raises(ValueError, match='no such params file'):
        load_params(str(tmp_path / 'missing.json'))
    (tmp_path / 'broken.json').write_text('{"filter_width": 2,')
    with pytest.raises(ValueError, match='not a readable JSON params file'):
        load_params(str(tmp_path / 'broken.json'))


def test_network_description_round_trip(tmp_path):
    assert NetworkDescription.beside(str(tmp_path)) is None
    described = NetworkDescription(**ORIGINAL_DEFAULTS).with_speakers(32, 377)
    path = described.save(str(tmp_path))
    assert os.listdir(tmp_path) == ['wavenet_params.json'] and path.endswith('.json')
    # The file is the params file's JSON with every field spelled out.
    assert json.loads(open(path).read()) == dict(ORIGINAL_DEFAULTS, **OPTIONAL_DEFAULTS,
                                                 gc_channels=32, gc_cardinality=377)
    description = NetworkDescription.beside(str(tmp_path))
    assert description == described and description.dilations == tuple(described.dilations)
    net = build_model(description)
    assert net.gc_embedding.shape == (377, 32)


def test_a_network_built_for_restoring_starts_from_zeros_and_restores_every_weight(
        speaker_files):
    prefix = str(speaker_files['prefix'])
    description = NetworkDescription.beside(str(speaker_files['described']))
    net = build_model(description, restoring=True)
    assert all(not np.any(weight.numpy()) for weight in net.weights
               if weight.path != 'wavenet/gc_embedding')  # an identity when square
    restore_model(net, prefix)
    # Restored as into a network of random weights: every weight came from the checkpoint.
    drawn = build_model(description)
    assert np.std(drawn.dilated_stack[0].filter.numpy()) > 0.01
    restore_model(drawn, prefix)
    for weight, expected in zip(net.weights, drawn.weights, strict=True):
        np.testing.assert_array_equal(weight.numpy(), expected.numpy(), weight.path)


def test_a_description_written_before_the_optional_fields_loads_with_their_defaults(tmp_path):
    # As a logdir of the original's fields plus the speakers was saved.
    (tmp_path / 'wavenet_params.json').write_text(json.dumps(dict(
        ORIGINAL_DEFAULTS, gc_channels=32, gc_cardinality=377, a_key_it_ignores=1)))
    description = NetworkDescription.beside(str(tmp_path))
    assert description.as_json() == dict(ORIGINAL_DEFAULTS, **OPTIONAL_DEFAULTS,
                                         gc_channels=32, gc_cardinality=377)


def test_difference_names_the_first_field_that_differs():
    described = NetworkDescription(**ORIGINAL_DEFAULTS)
    assert described.difference(described) is None
    assert described.difference({'dilations': list(described.dilations)}) is None
    assert described.difference(dict(residual_channels=16, skip_channels=8)) == \
        ('residual_channels', 32, 16)
    assert described.difference(described.with_speakers(4, 6)) == ('gc_channels', None, 4)


VOCODER = dict(ORIGINAL_DEFAULTS, lc_channels=80, lc_hop_length=256,
               lc_upsample_scales=[4, 4, 16])


def test_vocoder_params_and_their_description(tmp_path):
    path = tmp_path / 'vocoder.json'
    path.write_text(json.dumps(VOCODER))
    params = load_params(str(path))
    assert params.as_json() == dict(OPTIONAL_DEFAULTS, **VOCODER, gc_channels=None,
                                    gc_cardinality=None)
    params.save(str(tmp_path))
    assert NetworkDescription.beside(str(tmp_path)) == params
    net = build_model(params)
    assert net.local_condition_channels == 80 and net.lc_hop_length == 256
    assert net.dilated_stack[0].lc_filter.shape == (1, 80, 32)
    assert net.receptive_field == 5117  # conditioning does not widen it
    # The demo vocoder's layers reach 32 ms back, further than a period input's taps (one
    # period of the lowest pitch looked for, 50 Hz, and 3 samples); layers of dilations up
    # to 64 reach 16 ms, and the taps then widen the field.
    demo = json.loads(open(os.path.join(ROOT, 'demo', 'vocoder_params.json')).read())
    short = [2 ** i for i in range(7)] * 2
    for dilations, period_input, field in ((demo['dilations'], False, 512),
                                           (demo['dilations'], True, 512),
                                           (short, False, 256), (short, True, 320 + 3)):
        described = NetworkDescription(**dict(demo, dilations=dilations,
                                              period_input=period_input))
        assert described.receptive_field == build_model(described).receptive_field == field


@pytest.mark.parametrize('change, message', [
    (dict(lc_upsample_scales=[4, 4, 4]), 'the product of "lc_upsample_scales" [4, 4, 4] is 64, '
                                         'but "lc_hop_length" is 256'),
    (dict(lc_upsample_scales=None), '"lc_upsample_scales" must be a non-empty list'),
    (dict(lc_upsample_scales=[256, 0]), '"lc_upsample_scales" must be a non-empty list'),
    (dict(lc_hop_length=None), '"lc_hop_length" must be a positive integer'),
    (dict(lc_channels=0), '"lc_channels" must be a positive integer'),
    (dict(lc_channels=None), '"lc_hop_length" is set, but "lc_channels" is not'),
    (dict(lc_n_fft=128), '"lc_n_fft" (128) must be at least "lc_hop_length" (256)'),
    (dict(lc_fmin=-1), '"lc_fmin" must be a number in [0, 8000)'),
    (dict(lc_fmax=9000), '"lc_fmax" must be null or a number in (0, 8000]'),
    (dict(lc_fmin=500, lc_fmax=400), '"lc_fmax" must be null or a number in (500, 8000]'),
    (dict(lpc_order=-1), '"lpc_order" must be a non-negative integer, got -1'),
    (dict(lpc_order=True), '"lpc_order" must be a non-negative integer, got True'),
    (dict(lpc_order=512), '"lpc_order" (512) must be below half of "lc_n_fft" (1024)'),
    (dict(lpc_order=16, lc_channels=None, lc_hop_length=None, lc_upsample_scales=None),
     '"lpc_order" needs a vocoder'),
    (dict(lpc_order=16, output_distribution='mixture_of_logistics', scalar_input=True,
          quantization_channels=65536), '"lpc_order" needs the softmax output'),
    (dict(lpc_bandwidth_expansion=1.5), '"lpc_bandwidth_expansion" must be a number in (0, 1]'),
    (dict(lpc_bandwidth_expansion='0.9'), '"lpc_bandwidth_expansion" must be a number in (0, 1]'),
    (dict(preemphasis=1.0), '"preemphasis" must be a number in [0, 1), got 1.0'),
    (dict(preemphasis=0.85, lpc_order=0), '"preemphasis" needs linear prediction'),
    (dict(period_input=1), '"period_input" must be true or false, got 1'),
    (dict(period_input=True), '"period_input" needs linear prediction ("lpc_order")'),
    (dict(lc_context_channels=1.5), '"lc_context_channels" must be a non-negative integer'),
    (dict(lc_context_channels=64, lc_channels=None, lc_hop_length=None,
          lc_upsample_scales=None), '"lc_context_channels" needs a vocoder'),
])
def test_bad_vocoder_params_name_the_field(tmp_path, change, message):
    path = tmp_path / 'params.json'
    path.write_text(json.dumps(dict(VOCODER, **change)))
    with pytest.raises(ValueError) as error:
        load_params(str(path))
    assert str(error.value).startswith(f'{path}: ') and message in str(error.value)
