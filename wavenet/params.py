"""The network description: ``wavenet_params.json`` and the copy kept beside checkpoints."""
import json
import math
import os

from . import output
from .model import WaveNetModel

# Written into every training logdir, so generation can rebuild the same network.
NETWORK_FILE = 'wavenet_params.json'

PARAM_TYPES = {
    'filter_width': int, 'sample_rate': int, 'dilations': list, 'residual_channels': int,
    'dilation_channels': int, 'quantization_channels': int, 'skip_channels': int,
    'use_biases': bool, 'scalar_input': bool, 'initial_filter_width': int,
}

# Local conditioning: optional; absent or null means an unconditioned
# network, so every params file and description written before them keeps working.
LC_DEFAULTS = {
    'lc_channels': None, 'lc_hop_length': None, 'lc_upsample_scales': None,
    'lc_n_fft': 1024, 'lc_fmin': 0, 'lc_fmax': None, 'lc_context_channels': 0, 'lpc_order': 0,
}
# How the network is trained, kept with it: optional, and absent means as the original
# trained. ``input_noise``: the standard deviation of Gaussian noise added to the waveform
# the network reads (never to the samples it predicts) in training, so that it learns to
# rely on its conditioning rather than on a flawless past (see the README's vocoder).
TRAINING_DEFAULTS = {'input_noise': 0.0}
# What the network predicts (wavenet.output): optional, and absent means the original's
# softmax over quantization_channels mu-law codes.
OUTPUT_DEFAULTS = {'output_distribution': 'softmax', 'mixture_components': 10,
                   'log_scale_min': -7.0}
OUTPUT_DISTRIBUTIONS = ('softmax', 'mixture_of_logistics')
OPTIONAL_DEFAULTS = dict(LC_DEFAULTS, **TRAINING_DEFAULTS, **OUTPUT_DEFAULTS)
# Every field a params file describes (the description adds gc_channels, gc_cardinality).
PARAM_FIELDS = tuple(PARAM_TYPES) + tuple(OPTIONAL_DEFAULTS)


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
    _check_size(path, params)
    for key, default in OPTIONAL_DEFAULTS.items():
        if params.get(key) is None:
            params[key] = default
    _check_local_conditioning(path, params)
    _check_output(path, params)
    noise = params['input_noise']
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not 0 <= noise < 1:
        raise ValueError(f'{path}: "input_noise" must be a number in [0, 1), got {noise!r}')
    return params


def _memory():
    """This machine's memory in bytes (``None`` where the system does not say)."""
    try:
        return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    except (AttributeError, OSError, ValueError):
        return None


def _check_size(path, params):
    """Refuses a network that no machine here could hold, before any work: every training
    piece carries a receptive field of network input (a one-hot row per sample unless
    scalar), and generation keeps a receptive field of every layer's inputs."""
    field = receptive_field(params)
    width = 1 if params['scalar_input'] else params['quantization_channels']
    needed = 4 * field * max(width, params['residual_channels'])
    memory = _memory()
    if memory is not None and needed > memory:
        seconds = field / params['sample_rate']
        raise ValueError(
            f'{path}: "dilations" give a receptive field of {field} samples '
            f'({seconds / 3600:.3g} hours at {params["sample_rate"]} Hz), whose network input '
            f'alone needs {needed / 2 ** 30:.3g} GiB, more than this machine\'s '
            f'{memory / 2 ** 30:.3g} GiB')


def _is_positive_int(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _check_output(path, params):
    kind = params['output_distribution']
    if kind not in OUTPUT_DISTRIBUTIONS:
        raise ValueError(f'{path}: "output_distribution" must be one of '
                         f'{", ".join(OUTPUT_DISTRIBUTIONS)}, got {kind!r}')
    if not _is_positive_int(params['mixture_components']):
        raise ValueError(f'{path}: "mixture_components" must be a positive integer, got '
                         f'{params["mixture_components"]!r}')
    bound = params['log_scale_min']
    if isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound):
        raise ValueError(f'{path}: "log_scale_min" must be a number, got {bound!r}')
    if kind == 'mixture_of_logistics':
        if not params['scalar_input']:
            raise ValueError(f'{path}: "output_distribution": "mixture_of_logistics" needs '
                             '"scalar_input": true (it reads the samples themselves)')
        if params['quantization_channels'] != 2 ** 16:
            raise ValueError(f'{path}: "output_distribution": "mixture_of_logistics" models '
                             f'16-bit samples: "quantization_channels" must be 65536, got '
                             f'{params["quantization_channels"]}')


def _check_local_conditioning(path, params):
    for key, needs in (('lpc_order', 'its coefficients come from the features'),
                       ('lc_context_channels', 'it reads the features')):
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f'{path}: "{key}" must be a non-negative integer, got {value!r}')
        if value and params['lc_channels'] is None:
            raise ValueError(f'{path}: "{key}" needs a vocoder: {needs} ("lc_channels")')
    if params['lc_channels'] is None:
        for key in ('lc_hop_length', 'lc_upsample_scales'):
            if params[key] is not None:
                raise ValueError(f'{path}: "{key}" is set, but "lc_channels" is not '
                                 '(set both for a vocoder, neither for a plain WaveNet)')
        return
    for key in ('lc_channels', 'lc_hop_length', 'lc_n_fft'):
        if not _is_positive_int(params[key]):
            raise ValueError(f'{path}: "{key}" must be a positive integer, got {params[key]!r}')
    hop, scales = params['lc_hop_length'], params['lc_upsample_scales']
    if not (isinstance(scales, list) and scales and all(map(_is_positive_int, scales))):
        raise ValueError(f'{path}: "lc_upsample_scales" must be a non-empty list of positive '
                         f'integers, got {scales!r}')
    if math.prod(scales) != hop:
        raise ValueError(f'{path}: the product of "lc_upsample_scales" {scales} is '
                         f'{math.prod(scales)}, but "lc_hop_length" is {hop}')
    if params['lc_n_fft'] < hop:
        raise ValueError(f'{path}: "lc_n_fft" ({params["lc_n_fft"]}) must be at least '
                         f'"lc_hop_length" ({hop})')
    fmin, fmax, nyquist = params['lc_fmin'], params['lc_fmax'], params['sample_rate'] / 2
    if isinstance(fmin, bool) or not isinstance(fmin, int | float) or not 0 <= fmin < nyquist:
        raise ValueError(f'{path}: "lc_fmin" must be a number in [0, {nyquist:g}), got {fmin!r}')
    if fmax is not None and (isinstance(fmax, bool) or not isinstance(fmax, int | float)
                             or not fmin < fmax <= nyquist):
        raise ValueError(f'{path}: "lc_fmax" must be null or a number in ({fmin:g}, '
                         f'{nyquist:g}], got {fmax!r}')
    _check_linear_prediction(path, params)


def _check_linear_prediction(path, params):
    order = params['lpc_order']
    if order and order >= params['lc_n_fft'] // 2:
        raise ValueError(f'{path}: "lpc_order" ({order}) must be below half of "lc_n_fft" '
                         f'({params["lc_n_fft"]}): its autocorrelation comes from that spectrum')
    if order and params['output_distribution'] != 'softmax':
        raise ValueError(f'{path}: "lpc_order" needs the softmax output (the excitation is '
                         f'predicted as mu-law codes), got {params["output_distribution"]!r}')


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
        global_condition_cardinality=gc_cardinality,
        local_condition_channels=params.get('lc_channels'),
        lc_upsample_scales=params.get('lc_upsample_scales'),
        lc_context_channels=params.get('lc_context_channels') or 0,
        linear_prediction=linear_prediction_of(params), **_output_fields(params))


def linear_prediction_of(params):
    """The ``wavenet.lpc.LinearPrediction`` that ``params`` describe, or ``None``."""
    if not params.get('lpc_order'):
        return None
    from .features import MelFeatures
    from .lpc import LinearPrediction
    return LinearPrediction(params['lpc_order'], MelFeatures.from_params(params))


def output_of(params):
    """The output distribution (``wavenet.output``) that ``params`` describe."""
    return output.from_description(quantization_channels=params['quantization_channels'],
                                   **_output_fields(params))


def sample_coding_of(params):
    """How the samples that the network ``params`` describe generates are coded as ints:
    its output's codes, or with linear prediction 16-bit samples (``wavenet.lpc``)."""
    if params.get('lpc_order'):
        from .lpc import SAMPLES
        return SAMPLES
    return output_of(params)


def _output_fields(params):
    """The output fields of ``params``, their defaults where a dict lacks them."""
    return {field: params.get(field, default) for field, default in OUTPUT_DEFAULTS.items()}


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
