"""The network description: one frozen ``NetworkDescription``, read from a
``wavenet_params.json`` and kept beside checkpoints as the same JSON."""
import contextlib
import dataclasses
import json
import math
import os

from . import output
from .model import WaveNetModel, weights_to_restore

# Written into every training logdir, so generation can rebuild the same network.
NETWORK_FILE = 'wavenet_params.json'
# The params files that travel with the package, at the paths they have in a checkout:
# the default network (wavenet_params.json) and the demo's (demo/*.json).
PACKAGED = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data')


def params_file(path):
    """The params file that ``path`` names: itself where it is; where it is not, the
    package's copy of the file of that path in a checkout (``wavenet_params.json``,
    ``demo/vocoder_params.json``), with a line saying which file is read, so that the
    tools work from any folder."""
    if os.path.exists(path) or os.path.isabs(path):
        return path
    packaged = os.path.join(PACKAGED, os.path.normpath(path))
    if os.path.normpath(path).startswith('..') or not os.path.isfile(packaged):
        return path
    print(f'{path} is not in {os.getcwd()}: reading the package\'s {packaged}')
    return packaged

PARAM_TYPES = {
    'filter_width': int, 'sample_rate': int, 'dilations': list, 'residual_channels': int,
    'dilation_channels': int, 'quantization_channels': int, 'skip_channels': int,
    'use_biases': bool, 'scalar_input': bool, 'initial_filter_width': int,
}
OUTPUT_DISTRIBUTIONS = ('softmax', 'mixture_of_logistics')


@dataclasses.dataclass(frozen=True)
class NetworkDescription:
    """Everything that decides a network's weights and what it computes: the original's
    ten fields, then optional ones whose defaults are the original's behaviour (so every
    params file and description written before them means what it meant), then the
    speakers, which come from train.py's flags rather than the params file."""
    filter_width: int
    sample_rate: int
    dilations: tuple
    residual_channels: int
    dilation_channels: int
    quantization_channels: int
    skip_channels: int
    use_biases: bool
    scalar_input: bool
    initial_filter_width: int
    # Local conditioning (a vocoder); no lc_channels is an unconditioned network.
    lc_channels: int | None = None
    lc_hop_length: int | None = None
    lc_upsample_scales: tuple | None = None
    lc_n_fft: int = 1024
    lc_fmin: float = 0
    lc_fmax: float | None = None
    lc_context_channels: int = 0
    lpc_order: int = 0
    lpc_bandwidth_expansion: float = 1.0
    preemphasis: float = 0.0
    period_input: bool = False
    # How the network is trained, kept with it: the standard deviation of Gaussian noise
    # added to the waveform the network reads (never to the samples it predicts), so that
    # it learns to rely on its conditioning rather than on a flawless past (see docs/vocoder.md).
    input_noise: float = 0.0
    # What the network predicts (wavenet.output).
    output_distribution: str = 'softmax'
    mixture_components: int = 10
    log_scale_min: float = -7.0
    # Global conditioning (speakers).
    gc_channels: int | None = None
    gc_cardinality: int | None = None

    def __post_init__(self):
        # Lists from JSON become tuples: a description is a value, compared and hashed.
        for name in ('dilations', 'lc_upsample_scales'):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))

    @classmethod
    def load(cls, path):
        """Reads and checks a ``wavenet_params.json``; errors name the file and the field.
        Keys it does not know are ignored, as the original ignored them."""
        try:
            with open(path) as f:
                fields = json.load(f)
        except FileNotFoundError:
            raise ValueError(f'{path}: no such params file') from None
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f'{path}: not a readable JSON params file ({e})') from None
        if not isinstance(fields, dict):
            raise ValueError(f'{path}: expected a JSON object of network parameters')
        return cls.checked(fields, path)

    @classmethod
    def checked(cls, fields, source):
        """The description of ``fields`` (a JSON object), checked; errors start with
        ``source``."""
        fields = {f.name: fields[f.name] for f in dataclasses.fields(cls) if f.name in fields}
        _check_required(source, fields)
        for field in dataclasses.fields(cls):
            if fields.get(field.name) is None and field.default is not dataclasses.MISSING:
                fields[field.name] = field.default
        _check_local_conditioning(source, fields)
        _check_period_input(source, fields)
        _check_output(source, fields)
        noise = fields['input_noise']
        if isinstance(noise, bool) or not isinstance(noise, int | float) or not 0 <= noise < 1:
            raise ValueError(f'{source}: "input_noise" must be a number in [0, 1), got '
                             f'{noise!r}')
        return cls(**fields)

    @classmethod
    def beside(cls, checkpoint_dir):
        """The description saved beside the checkpoints in ``checkpoint_dir``, or ``None``."""
        path = os.path.join(checkpoint_dir, NETWORK_FILE)
        return cls.load(path) if os.path.exists(path) else None

    def save(self, logdir):
        """Writes the description to ``logdir/NETWORK_FILE`` atomically (temporary file +
        rename), so a reader never sees half a file; returns its path."""
        path = os.path.join(logdir, NETWORK_FILE)
        temporary = path + '.tmp'
        with open(temporary, 'w') as f:
            json.dump(self.as_json(), f, indent=4)
        os.replace(temporary, path)
        return path

    def as_json(self):
        """The description as the JSON object of a params file (lists, not tuples)."""
        return {name: list(value) if isinstance(value, tuple) else value
                for name, value in dataclasses.asdict(self).items()}

    def with_speakers(self, gc_channels, gc_cardinality):
        return dataclasses.replace(self, gc_channels=gc_channels, gc_cardinality=gc_cardinality)

    def difference(self, other):
        """The first field where ``other`` (a description, or a mapping of some fields)
        says otherwise: ``(field, this one's value, other's value)``, or ``None``."""
        if isinstance(other, NetworkDescription):
            other = dataclasses.asdict(other)
        for name, value in other.items():
            if isinstance(value, list):
                value = tuple(value)
            if getattr(self, name) != value:
                return name, getattr(self, name), value
        return None

    @property
    def receptive_field(self):
        """The receptive field of the network, without building it."""
        reach = 0 if self.period is None else self.period.reach
        return WaveNetModel.calculate_receptive_field(
            self.filter_width, self.dilations, self.scalar_input, self.initial_filter_width,
            reach)

    @property
    def features(self):
        """The ``wavenet.features.MelFeatures`` a vocoder reads, or ``None``."""
        if self.lc_channels is None:
            return None
        from .features import MelFeatures
        return MelFeatures(self.sample_rate, self.lc_channels, self.lc_hop_length,
                           self.lc_n_fft, self.lc_fmin, self.lc_fmax)

    @property
    def linear_prediction(self):
        """The ``wavenet.lpc.LinearPrediction`` of a vocoder with ``lpc_order``, or ``None``."""
        if not self.lpc_order:
            return None
        from .lpc import LinearPrediction
        return LinearPrediction(self.lpc_order, self.features, self.lpc_bandwidth_expansion,
                                self.preemphasis)

    @property
    def period(self):
        """The ``wavenet.period.PeriodInput`` of a vocoder with ``period_input``, or
        ``None``."""
        if not self.period_input:
            return None
        from .period import PeriodInput
        return PeriodInput(self.features)

    @property
    def output(self):
        """The output distribution (``wavenet.output``)."""
        return output.from_description(**self._output_fields())

    @property
    def sample_coding(self):
        """How the generated samples are coded as ints: the output's codes, or with linear
        prediction 16-bit samples (``wavenet.lpc``)."""
        if self.lpc_order:
            from .lpc import SAMPLES
            return SAMPLES
        return self.output

    def _output_fields(self):
        return dict(quantization_channels=self.quantization_channels,
                    output_distribution=self.output_distribution,
                    mixture_components=self.mixture_components,
                    log_scale_min=self.log_scale_min)


def build_model(description, histograms=False, restoring=False):
    """The ``WaveNetModel`` that ``description`` describes; with ``restoring``, its
    weights zeros until a checkpoint is restored into it (``model.weights_to_restore``)."""
    d = description
    with weights_to_restore() if restoring else contextlib.nullcontext():
        return WaveNetModel(
            batch_size=1, dilations=list(d.dilations), filter_width=d.filter_width,
            residual_channels=d.residual_channels, dilation_channels=d.dilation_channels,
            skip_channels=d.skip_channels, use_biases=d.use_biases, scalar_input=d.scalar_input,
            initial_filter_width=d.initial_filter_width, histograms=histograms,
            global_condition_channels=d.gc_channels,
            global_condition_cardinality=d.gc_cardinality,
            local_condition_channels=d.lc_channels,
            lc_upsample_scales=None if d.lc_upsample_scales is None else list(d.lc_upsample_scales),
            lc_context_channels=d.lc_context_channels, linear_prediction=d.linear_prediction,
            period_input=d.period, **d._output_fields())


def _check_required(path, params):
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
    if not (isinstance(dilations, list) and dilations and all(_is_positive_int(d)
                                                               for d in dilations)):
        raise ValueError(f'{path}: "dilations" must be a non-empty list of positive integers')
    _check_size(path, params)


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
    field = WaveNetModel.calculate_receptive_field(
        params['filter_width'], params['dilations'], params['scalar_input'],
        params['initial_filter_width'])
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


def _check_period_input(path, params):
    if not isinstance(params['period_input'], bool):
        raise ValueError(f'{path}: "period_input" must be true or false, got '
                         f'{params["period_input"]!r}')
    if params['period_input'] and not params['lpc_order']:
        raise ValueError(f'{path}: "period_input" needs linear prediction ("lpc_order"): '
                         'its taps read the excitation')


def _check_linear_prediction(path, params):
    order, expansion = params['lpc_order'], params['lpc_bandwidth_expansion']
    if isinstance(expansion, bool) or not isinstance(expansion, int | float) or \
            not 0 < expansion <= 1:
        raise ValueError(f'{path}: "lpc_bandwidth_expansion" must be a number in (0, 1], got '
                         f'{expansion!r}')
    emphasis = params['preemphasis']
    if isinstance(emphasis, bool) or not isinstance(emphasis, int | float) or \
            not 0 <= emphasis < 1:
        raise ValueError(f'{path}: "preemphasis" must be a number in [0, 1), got {emphasis!r}')
    if emphasis and not order:
        raise ValueError(f'{path}: "preemphasis" needs linear prediction ("lpc_order"): it '
                         'tilts its analysis')
    if order and order >= params['lc_n_fft'] // 2:
        raise ValueError(f'{path}: "lpc_order" ({order}) must be below half of "lc_n_fft" '
                         f'({params["lc_n_fft"]}): its autocorrelation comes from that spectrum')
    if order and params['output_distribution'] != 'softmax':
        raise ValueError(f'{path}: "lpc_order" needs the softmax output (the excitation is '
                         f'predicted as mu-law codes), got {params["output_distribution"]!r}')
