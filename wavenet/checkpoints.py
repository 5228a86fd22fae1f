"""Checkpoints: their layout, finding them, the network they hold, restoring them, and
those of the original TF 1 toolkit.

A checkpoint of this toolkit is a ``tf.train.Checkpoint`` of ``step``, ``model`` and
``optimizer`` (and with ``--ema_decay``, ``average``: ``averaging.WeightAverage``) named
``model.ckpt-<step>``, with the network description
(``wavenet_params.json``) beside it. The original saved its trainable variables under
their TF 1 names (``wavenet/dilated_stack/layer3/filter``, and its biases under TF's
default names ``Variable``, ``Variable_1``, ...) and nothing else: no optimizer state, no
step but the one in the file name, no description. Such a checkpoint is recognised by
its names and read through ``tf1_variables``, the one table of those names.
"""
import os
import re

import tensorflow as tf

from .averaging import WeightAverage, holds_average
from .output import MuLawSoftmax
from .params import NETWORK_FILE, NetworkDescription, params_file

DEFAULT_PARAMS = './wavenet_params.json'
TF1_SCOPE = 'wavenet/'
# The original's biases, in the order it created them (named positionally, so TF numbered
# them): per dilated layer filter, gate, dense and skip; in post-processing 1 and 2.
LAYER_BIASES = ('filter_bias', 'gate_bias', 'dense_bias', 'skip_bias')
POSTPROCESSING_BIASES = ('postprocess1_bias', 'postprocess2_bias')


# -- layout and discovery ----------------------------------------------------------------

def create_checkpoint(net, optimizer, average=None):
    """The checkpoint layout shared with generation: ``step``, ``seconds`` (the wall time
    its trainings spent, for a time budget), ``model`` and ``optimizer``, and ``average``
    when given (generation restores ``tf.train.Checkpoint(model=net)``, or with
    ``average``, from the same files)."""
    # Creating the optimizer's slots now, for every weight, makes a restore fill them at
    # once instead of waiting for the first update, and keeps the layout the same whether
    # or not a weight has a gradient.
    optimizer.build(net.trainable_variables)
    # Under float16 the optimizer is wrapped for loss scaling; the checkpoint holds the
    # optimizer inside, so mixed and full precision checkpoints are interchangeable (the
    # loss scale is not kept: it finds its level again within a few steps).
    optimizer = getattr(optimizer, 'inner_optimizer', optimizer)
    kept = {} if average is None else {'average': average}
    return tf.train.Checkpoint(step=tf.Variable(-1, dtype=tf.int64),
                               seconds=tf.Variable(0.0, dtype=tf.float64), model=net,
                               optimizer=optimizer, **kept)


def _present_checkpoints(directory):
    """The checkpoints that ``directory``'s ``checkpoint`` file names and whose files are
    there, newest first."""
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return []
    named = [state.model_checkpoint_path, *reversed(state.all_model_checkpoint_paths)]
    return [p for p in dict.fromkeys(named) if p and os.path.exists(p + '.index')]


def latest_checkpoint(directory):
    """The newest checkpoint in ``directory`` whose files are there, or ``None``: the one
    its ``checkpoint`` file names or, once that one's files were moved away (a damaged
    checkpoint, say), the newest of the older ones it lists."""
    return next(iter(_present_checkpoints(directory)), None)


def find_checkpoint(path):
    """The checkpoint prefix for ``path`` (a prefix, or a directory: its newest checkpoint),
    checked to be readable."""
    prefix = latest_checkpoint(path) if os.path.isdir(path) else path
    if prefix is None:
        raise ValueError(f'no checkpoint in directory {path}')
    if not os.path.exists(prefix + '.index'):
        raise ValueError(f'no checkpoint {prefix} (expected {prefix}.index)')
    checkpoint_shapes(prefix)
    check_intact(prefix)
    return prefix


def check_intact(prefix):
    """Reads every value of checkpoint ``prefix``: a ``ValueError`` naming it when its data
    cannot be read whole (a data file cut short by a full disk or an interrupted copy)."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError, IndexError, OSError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f'checkpoint {prefix} is damaged: its data cannot be read whole '
                         f'({reason})') from None


def newest_intact(directory, below):
    """The newest checkpoint in ``directory`` older than ``below`` whose data reads whole,
    or ``None``."""
    for prefix in _present_checkpoints(directory):
        if prefix == below:
            continue
        try:
            check_intact(prefix)
            return prefix
        except ValueError:
            continue
    return None


def step_in_name(prefix):
    """``N`` of a prefix named ``model.ckpt-N`` (how the original recorded its step)."""
    match = re.search(r'-(\d+)$', prefix)
    return int(match.group(1)) if match else 0


def keep_original_checkpoints(manager):
    """Makes ``manager`` (a ``tf.train.CheckpointManager``) forget the original toolkit's
    checkpoints it found in its folder, so that ``max_to_keep`` never deletes them: a
    training continued in the folder of an original checkpoint writes beside those and
    never removes one."""
    # The manager keeps what it recovered from the folder's 'checkpoint' file as deletion
    # candidates, and offers no public way to say "not these".
    candidates = manager._maybe_delete  # noqa: SLF001
    for prefix in list(candidates):
        if os.path.exists(prefix + '.index') and is_tf1_checkpoint(prefix):
            del candidates[prefix]


# -- the network a checkpoint holds ---------------------------------------------------------

def network_description(prefix, params_path=None, gc_channels=None, gc_cardinality=None):
    """``(description, source)``: the ``NetworkDescription`` of the network that checkpoint
    ``prefix`` holds, and where it came from. The description saved beside the checkpoint
    wins; without one, ``params_path`` and the gc values are used. Explicit values that
    contradict a saved description are errors naming the field."""
    saved = NetworkDescription.beside(os.path.dirname(prefix))
    if saved is None:
        params_path = params_file(params_path or DEFAULT_PARAMS)
        described = NetworkDescription.load(params_path)
        return described.with_speakers(gc_channels, gc_cardinality), params_path
    source = os.path.join(os.path.dirname(prefix), NETWORK_FILE)
    explicit = NetworkDescription.load(params_file(params_path)).as_json() if params_path \
        else {}
    # The speakers are the flags' (a params file does not give them).
    explicit.update(gc_channels=gc_channels, gc_cardinality=gc_cardinality)
    explicit = {name: value for name, value in explicit.items()
                if value is not None or not name.startswith('gc_')}
    difference = saved.difference(explicit)
    if difference:
        field, kept, value = difference
        given = f'--{field}' if field.startswith('gc_') else params_path
        raise ValueError(f'{field} is {_json(value)} in {given}, but {_json(kept)} in {source}'
                         f' (the network the checkpoint was trained as)')
    return saved, source


def check_network_description(directory, description, params_path='--wavenet_params'):
    """Refuses (``ValueError`` naming the field) a ``description`` unlike the network whose
    newest checkpoint is in ``directory``: unlike the description saved beside it, or
    without one (an original checkpoint) unlike its weights' shapes. No checkpoint passes."""
    prefix = latest_checkpoint(directory)
    if prefix is None:
        return  # nothing to restore, so nothing to contradict
    saved = NetworkDescription.beside(directory)
    if saved is None:
        check_checkpoint(prefix, description, params_path)
        return
    difference = description.difference(saved)
    if difference:
        field, value, kept = difference
        sources = {'gc_channels': f'--gc_channels={description.gc_channels}',
                   'gc_cardinality': 'the detected '
                                     f'--gc_cardinality={description.gc_cardinality}'}
        source = sources.get(field, f'"{field}": {_json(value)} in --wavenet_params')
        raise ValueError(f'{source} does not match the network saved in {directory} '
                         f'("{field}": {_json(kept)})')


def _json(value):
    """A field's value as its params file spells it, lists as lists."""
    return repr(list(value) if isinstance(value, tuple) else value)


def check_checkpoint(prefix, description, source):
    """Raises a ``ValueError`` naming the field where ``description`` disagrees with the
    weight shapes in checkpoint ``prefix``."""
    kind = description.output_distribution
    if is_tf1_checkpoint(prefix):
        _check_softmax_only(prefix, kind, f' ({source})')
    found = _checkpoint_fields(prefix)
    # The last layer's width is the output distribution's: the softmax's codes, or three
    # numbers per logistic of a mixture.
    width = found.pop('output_width')
    if kind == 'softmax':
        found['quantization_channels'] = width
    else:
        found['mixture_components'] = width / 3 if width % 3 else width // 3
    # The weights tell how many dilated layers there are, not their dilations.
    layers = found.pop('dilations')
    if layers != len(description.dilations):
        raise ValueError(f'{prefix} holds a network with dilated layers (dilations) = '
                         f'{layers}, but {source} says {len(description.dilations)}')
    difference = description.difference(found)
    if difference:
        field, expected, value = difference
        value = list(value) if isinstance(value, tuple) else value
        expected = list(expected) if isinstance(expected, tuple) else expected
        raise ValueError(f'{prefix} holds a network with {field} = {value}, but {source} '
                         f'says {expected}')


def _checkpoint_fields(prefix):
    """What the weight shapes in a checkpoint say about the network's description."""
    shapes = checkpoint_shapes(prefix)
    layers = [name for name in shapes if re.fullmatch(r'layer\d+/filter', name)]
    required = ('causal_layer/kernel', 'layer0/filter', 'layer0/skip',
                'postprocessing/postprocess2')
    if not all(name in shapes for name in required):
        raise ValueError(f'{prefix} is not a WaveNet checkpoint (no model weights in it)')
    causal_width, input_channels, _ = shapes['causal_layer/kernel']
    filter_width, residual_channels, dilation_channels = shapes['layer0/filter']
    fields = {
        'filter_width': filter_width, 'residual_channels': residual_channels,
        'dilation_channels': dilation_channels, 'dilations': len(layers),
        'skip_channels': shapes['layer0/skip'][2],
        'output_width': shapes['postprocessing/postprocess2'][2],
        'use_biases': 'layer0/filter_bias' in shapes, 'scalar_input': input_channels == 1,
        'gc_channels': shapes['layer0/gc_filter'][1] if 'layer0/gc_filter' in shapes else None,
        'gc_cardinality': shapes['gc_embedding'][0] if 'gc_embedding' in shapes else None,
        'lc_channels': shapes['layer0/lc_filter'][1] if 'layer0/lc_filter' in shapes else None,
        'lc_upsample_scales': [(shapes[f'lc_upsampling/smooth{i}'][0] - 1) // 2
                               for i in range(len(shapes))
                               if f'lc_upsampling/smooth{i}' in shapes] or None,
    }
    if fields['scalar_input']:
        fields['initial_filter_width'] = causal_width
    return fields


def checkpoint_shapes(prefix):
    """``{weight path in the model: shape}`` of the model weights in a checkpoint, of this
    toolkit or of the original (its names translated)."""
    try:
        variables = tf.train.list_variables(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise ValueError(f'cannot read checkpoint {prefix} ({type(e).__name__})') from None
    shapes = {}
    for key, shape in variables:
        match = re.fullmatch(r'model/([^.]+)/\.ATTRIBUTES/VARIABLE_VALUE', key)
        path = match.group(1) if match else _tf1_weight_path(key)
        if path:
            shapes[path] = shape
    return shapes


# -- restoring -------------------------------------------------------------------------------

def is_tf1_checkpoint(prefix):
    """Whether ``prefix`` was written by the original toolkit (by its variable names)."""
    return any(name.startswith(TF1_SCOPE) for name, _ in tf.train.list_variables(prefix))


def restore_exactly(checkpoint, prefix):
    """Restores checkpoint ``prefix`` into ``checkpoint``'s objects, every one of which must be
    matched; a mismatch is a one-line ``ValueError`` instead of TensorFlow's report."""
    try:
        # Partial only in what the file holds beyond these objects (e.g. the optimizer when
        # generation restores the model alone, or the save counter).
        checkpoint.restore(prefix).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f'cannot restore {prefix} into this network: {reason}') from None


def restore_model(net, prefix, averaged=True):
    """Loads the weights of checkpoint ``prefix`` (of either toolkit) into ``net``; every
    weight must match. With ``averaged``, those of the weight average when the checkpoint
    holds one. Returns whether it did."""
    if is_tf1_checkpoint(prefix):
        load_tf1_weights(net, prefix)
        return False
    if not (averaged and holds_average(_variable_names(prefix))):
        restore_exactly(tf.train.Checkpoint(model=net), prefix)
        return False
    average = WeightAverage(net)
    restore_exactly(tf.train.Checkpoint(model=net, average=average), prefix)
    average.copy_to(net)
    return True


def restore_training(checkpoint, directory):
    """Restores the newest checkpoint in ``directory`` into ``checkpoint`` (of
    ``create_checkpoint``); returns its step, or ``None`` when there is none. One without
    optimizer state (the original's, or a converted one) starts the optimizer fresh.
    Raises ``ValueError`` when the checkpoint does not fit the network."""
    print(f'Trying to restore saved checkpoints from {directory} ...', end='')
    prefix = latest_checkpoint(directory)
    if prefix is None:
        print(' No checkpoint found.')
        return None
    print(f'  Checkpoint found: {prefix}')
    try:
        check_intact(prefix)
    except ValueError as e:
        print()
        # Never resumed from an older one here: its steps would be saved again under the
        # damaged checkpoint's name, overwriting it.
        intact = newest_intact(directory, prefix)
        advice = (f'move its files {os.path.basename(prefix)}.* out of {directory} to resume '
                  f'from the newest intact one, {intact}' if intact else
                  f'no older checkpoint in {directory} is intact')
        raise ValueError(f'{e}; {advice}') from None
    print('  Restoring...', end='', flush=True)
    original = is_tf1_checkpoint(prefix)
    names = _variable_names(prefix)
    with_optimizer = not original and _holds(names, 'optimizer')
    average = getattr(checkpoint, 'average', None)
    with_average = average is not None and holds_average(names)
    try:
        if original:
            load_tf1_weights(checkpoint.model, prefix)
            checkpoint.step.assign(step_in_name(prefix))
        else:
            # Only the objects the file holds: the others start fresh.
            held = dict(step=checkpoint.step, model=checkpoint.model)
            held.update({'seconds': checkpoint.seconds} if _holds(names, 'seconds') else {})
            held.update({'optimizer': checkpoint.optimizer} if with_optimizer else {})
            held.update({'average': average} if with_average else {})
            restore_exactly(tf.train.Checkpoint(**held), prefix)
    except ValueError:
        print()
        raise
    print(' Done.')
    if not with_optimizer:
        print('  The checkpoint holds no optimizer state (as the original toolkit saved '
              'none): the optimizer starts fresh.')
    if average is not None and not with_average:
        average.reset(checkpoint.model)
        print('  The checkpoint holds no weight average: it starts from the restored weights.')
    step = int(checkpoint.step.numpy())
    print(f'  Global step was: {step}')
    return step


def _holds(names, name):
    """Whether a checkpoint of variable ``names`` holds the object ``name``."""
    return any(n.split('/', 1)[0] == name for n in names)


def _variable_names(prefix):
    return [name for name, _ in tf.train.list_variables(prefix)]


# -- the original toolkit's checkpoints ---------------------------------------------------

def tf1_variables(net):
    """``{the original's variable name: net's weight}`` for every weight of ``net``."""
    names = {f'{TF1_SCOPE}causal_layer/filter': net.causal_layer.kernel}
    for i, block in enumerate(net.dilated_stack):
        scope = f'{TF1_SCOPE}dilated_stack/layer{i}/'
        for weight in ('filter', 'gate', 'dense', 'skip', 'gc_filter', 'gc_gate'):
            if hasattr(block, weight):
                names[scope + weight] = getattr(block, weight)
        if block.use_biases:
            names.update((scope + _default_name(k), getattr(block, bias))
                         for k, bias in enumerate(LAYER_BIASES))
    post = net.postprocessing
    names[f'{TF1_SCOPE}postprocessing/postprocess1'] = post.postprocess1
    names[f'{TF1_SCOPE}postprocessing/postprocess2'] = post.postprocess2
    if post.use_biases:
        names.update((f'{TF1_SCOPE}postprocessing/{_default_name(k)}', getattr(post, bias))
                     for k, bias in enumerate(POSTPROCESSING_BIASES))
    if hasattr(net, 'gc_embedding'):
        names[f'{TF1_SCOPE}embeddings/gc_embedding'] = net.gc_embedding
    return names


def _default_name(k):
    return 'Variable' if k == 0 else f'Variable_{k}'


def _tf1_weight_path(name):
    """This toolkit's weight path (as in its checkpoints) for an original variable name."""
    match = re.fullmatch(r'wavenet/dilated_stack/(layer\d+)/(\w+)', name)
    if match:
        layer, weight = match.groups()
        return f'{layer}/{_bias_by_default_name(weight, LAYER_BIASES)}'
    match = re.fullmatch(r'wavenet/postprocessing/(\w+)', name)
    if match:
        return f'postprocessing/{_bias_by_default_name(match.group(1), POSTPROCESSING_BIASES)}'
    return {'wavenet/causal_layer/filter': 'causal_layer/kernel',
            'wavenet/embeddings/gc_embedding': 'gc_embedding'}.get(name)


def _bias_by_default_name(name, biases):
    match = re.fullmatch(r'Variable(?:_(\d+))?', name)
    if not match:
        return name
    k = int(match.group(1) or 0)
    return biases[k] if k < len(biases) else name


# Which description field each dimension of a weight comes from, to name the probable
# culprit of a shape that does not fit.
_DIMENSIONS = {
    'filter': ('filter_width', 'residual_channels', 'dilation_channels'),
    'gate': ('filter_width', 'residual_channels', 'dilation_channels'),
    'dense': (None, 'dilation_channels', 'residual_channels'),
    'skip': (None, 'dilation_channels', 'skip_channels'),
    'gc_filter': (None, 'gc_channels', 'dilation_channels'),
    'gc_gate': (None, 'gc_channels', 'dilation_channels'),
    'filter_bias': ('dilation_channels',), 'gate_bias': ('dilation_channels',),
    'dense_bias': ('residual_channels',), 'skip_bias': ('skip_channels',),
    'postprocess1': (None, 'skip_channels', 'skip_channels'),
    'postprocess2': (None, 'skip_channels', 'quantization_channels'),
    'postprocess1_bias': ('skip_channels',), 'postprocess2_bias': ('quantization_channels',),
    'kernel': ('filter_width or initial_filter_width', 'quantization_channels or scalar_input',
               'residual_channels'),
    'gc_embedding': ('gc_cardinality', 'gc_channels'),
}


def _check_softmax_only(prefix, kind, source=''):
    """Refuses another output than the softmax for the original toolkit's checkpoint."""
    if kind != MuLawSoftmax.name:
        raise ValueError(f'{prefix} is a checkpoint of the original toolkit, whose networks '
                         f'have the softmax output only, not "output_distribution": '
                         f'"{kind}"{source}')


def load_tf1_weights(net, prefix):
    """Assigns the original toolkit's checkpoint ``prefix`` to ``net``'s weights. A missing
    variable, one the network does not explain, or a shape unlike the network's is a
    one-line ``ValueError`` naming the variable (and for a shape, the probable field)."""
    _check_softmax_only(prefix, net.output_distribution.name)
    reader = tf.train.load_checkpoint(prefix)
    found = reader.get_variable_to_shape_map()
    expected = tf1_variables(net)
    for name in sorted(expected):
        if name not in found:
            raise ValueError(f'{prefix}: variable {name} is missing (the network described '
                             'has it)')
    for name in sorted(found):
        if name not in expected:
            raise ValueError(f'{prefix}: variable {name} is not part of the network described '
                             '(check --wavenet_params and the --gc_* flags)')
    for name, weight in expected.items():
        shape = list(found[name])
        if shape != list(weight.shape):
            raise ValueError(f'{prefix}: variable {name} has shape {shape}, the network '
                             f'described has {list(weight.shape)}'
                             + _probable_field(_tf1_weight_path(name), shape, weight.shape))
    for name, weight in expected.items():
        weight.assign(reader.get_tensor(name))


def _probable_field(path, found, expected):
    fields = _DIMENSIONS.get(path.rsplit('/', 1)[-1], ())
    wrong = [fields[i] for i, (a, b) in enumerate(zip(found, expected))
             if a != b and i < len(fields) and fields[i]]
    return f': {wrong[0]} is probably wrong' if wrong else ''
