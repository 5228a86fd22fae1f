"""The network description: ``wavenet_params.json`` and the copy kept beside checkpoints."""
import json
import os

from .model import WaveNetModel

# Written into every training logdir, so generation can rebuild the same network.
NETWORK_FILE = 'wavenet_params.json'

PARAM_TYPES = {
    'filter_width': int, 'sample_rate': int, 'dilations': list, 'residual_channels': int,
    'dilation_channels': int, 'quantization_channels': int, 'skip_channels': int,
    'use_biases': bool, 'scalar_input': bool, 'initial_filter_width': int,
}


def load_params(path):
    """Reads and checks a ``wavenet_params.json``; errors name the file and the field."""
    try:
        with open(path) as f:
            params = json.load(f)
    except FileNotFoundError:
        raise ValueError(f'{path}: no such params file') from None
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f'{path}: not a readable JSON params file ({e})') from None
    if not isinstance(params, dict):
        raise ValueError(f'{path}: expected a JSON object of network parameters')
    for key, kind in PARAM_TYPES.items():
        if key not in params:
            raise ValueError(f'{path}: missing "{key}"')
        value = params[key]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f'{path}: "{key}" must be a positive integer, got {value!r}')
        if kind is bool and not isinstance(value, bool):
            raise ValueError(f'{path}: "{key}" must be true or false, got {value!r}')
    if params['quantization_channels'] < 2:
        raise ValueError(f'{path}: "quantization_channels" must be at least 2, '
                         f'got {params["quantization_channels"]}')
    dilations = params['dilations']
    if not dilations or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                for d in dilations):
        raise ValueError(f'{path}: "dilations" must be a non-empty list of positive integers')
    return params


def receptive_field(params):
    """The receptive field of the network ``params`` describes, without building it."""
    return WaveNetModel.calculate_receptive_field(
        params['filter_width'], params['dilations'], params['scalar_input'],
        params['initial_filter_width'])


def build_model(params, gc_channels=None, gc_cardinality=None, histograms=False):
    """The ``WaveNetModel`` that ``params`` (a loaded params dict) describes."""
    return WaveNetModel(
        batch_size=1,
        dilations=params['dilations'],
        filter_width=params['filter_width'],
        residual_channels=params['residual_channels'],
        dilation_channels=params['dilation_channels'],
        skip_channels=params['skip_channels'],
        quantization_channels=params['quantization_channels'],
        use_biases=params['use_biases'],
        scalar_input=params['scalar_input'],
        initial_filter_width=params['initial_filter_width'],
        histograms=histograms,
        global_condition_channels=gc_channels,
        global_condition_cardinality=gc_cardinality)


def save_network_description(logdir, params, gc_channels=None, gc_cardinality=None):
    """Writes ``params`` + ``gc_channels`` + ``gc_cardinality`` to ``logdir/NETWORK_FILE``
    atomically (temporary file + rename), so a reader never sees half a file."""
    description = dict(params, gc_channels=gc_channels, gc_cardinality=gc_cardinality)
    path = os.path.join(logdir, NETWORK_FILE)
    temporary = path + '.tmp'
    with open(temporary, 'w') as f:
        json.dump(description, f, indent=4)
    os.replace(temporary, path)
    return path


def load_network_description(checkpoint_dir):
    """The description saved beside checkpoints in ``checkpoint_dir``, or ``None``."""
    path = os.path.join(checkpoint_dir, NETWORK_FILE)
    if not os.path.exists(path):
        return None
    description = load_params(path)
    description.setdefault('gc_channels', None)
    description.setdefault('gc_cardinality', None)
    return description
