"""wavenet_params.json: the defaults, one-line errors, the description beside checkpoints."""
import json
import os

import pytest

from wavenet.params import (
    build_model,
    load_network_description,
    load_params,
    save_network_description,
)

ROOT = os.path.join(os.path.dirname(__file__), '..')
ORIGINAL_DEFAULTS = {
    'filter_width': 2, 'sample_rate': 16000, 'dilations': [2 ** i for i in range(10)] * 5,
    'residual_channels': 32, 'dilation_channels': 32, 'quantization_channels': 256,
    'skip_channels': 512, 'use_biases': True, 'scalar_input': False, 'initial_filter_width': 32,
}


def test_default_params_are_the_originals():
    params = load_params(os.path.join(ROOT, 'wavenet_params.json'))
    assert params == ORIGINAL_DEFAULTS
    assert build_model(params).receptive_field == 5117


@pytest.mark.parametrize('change, message', [
    (dict(filter_width=None), 'missing "filter_width"'),
    (dict(residual_channels='32'), '"residual_channels" must be a positive integer'),
    (dict(skip_channels=0), '"skip_channels" must be a positive integer'),
    (dict(use_biases='yes'), '"use_biases" must be true or false'),
    (dict(quantization_channels=1), '"quantization_channels" must be at least 2'),
    (dict(dilations=[]), '"dilations" must be a non-empty list'),
    (dict(dilations=[1, 0]), '"dilations" must be a non-empty list'),
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
    assert load_network_description(str(tmp_path)) is None
    path = save_network_description(str(tmp_path), ORIGINAL_DEFAULTS, 32, 377)
    assert os.listdir(tmp_path) == ['wavenet_params.json'] and path.endswith('.json')
    description = load_network_description(str(tmp_path))
    assert description == dict(ORIGINAL_DEFAULTS, gc_channels=32, gc_cardinality=377)
    net = build_model(description, description['gc_channels'], description['gc_cardinality'])
    assert net.gc_embedding.shape == (377, 32)
