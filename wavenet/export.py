"""A trained network as a SavedModel that generates: ``python -m wavenet.export CHECKPOINT
OUT_DIR``.

The SavedModel's signatures run ``generation.generate_all``, the compiled loop of
``generate.py`` in one graph, so that loaded with ``tf.saved_model.load`` by TensorFlow
alone (TF Serving, another language's API, a Python without this package) they draw the
samples ``generate.py`` draws for the same checkpoint, inputs, seed and temperature:

- a vocoder: ``vocode(features [frames, lc_channels] float32, seed int64, temperature
  float32) -> audio [frames * hop]`` and ``vocode_batch`` (features ``[B, frames,
  lc_channels]``, shorter utterances padded with frames of silence, ``-> [B, frames *
  hop]``: the rows of ``generate.py`` given several ``--lc_wav``);
- a speaker-conditioned network: ``generate(samples int32, speaker int32, seed, temperature)
  -> audio [samples]`` and ``generate_batch`` (speakers ``[B]``: ``--gc_id=a,b,...``);
- a plain network: ``generate(samples, seed, temperature)`` and ``generate_batch(samples,
  streams int32, seed, temperature) -> [streams, samples]`` (``--streams``).

Audio is float32, each sample a 16-bit value over 32768: what ``generate.py``'s wav holds.
The network description goes with it as the asset ``wavenet_params.json``.
"""
import os
import shutil
import tempfile

import numpy as np

from . import load_tensorflow

tf = load_tensorflow()  # its native logs muted, as the other tools import it

from . import generation  # noqa: E402

SEED = tf.TensorSpec([], tf.int64, name='seed')
TEMPERATURE = tf.TensorSpec([], tf.float32, name='temperature')
SAMPLES = tf.TensorSpec([], tf.int32, name='samples')


class Generator(tf.Module):
    """The exported object: a restored network, its description as an asset, and the
    generation signatures its kind of network has (``signatures``)."""

    def __init__(self, net, description, description_path):
        super().__init__(name='wavenet')
        self.net = net
        self.description = description
        self.network_description = tf.saved_model.Asset(description_path)
        self.sample_rate = tf.constant(description.sample_rate, name='sample_rate')
        pcm = net.sample_coding.pcm_table().astype(np.float32) / 32768
        self.pcm = tf.constant(pcm, name='pcm')

        # Only the signatures of this kind of network, with the inputs they take.
        if description.lc_channels is not None:
            frames = [None, description.lc_channels]
            self.vocode = _serving(self._vocode, tf.TensorSpec(frames, tf.float32, 'features'))
            self.vocode_batch = _serving(self._vocode_batch,
                                         tf.TensorSpec([None] + frames, tf.float32, 'features'))
        elif description.gc_channels is not None:
            self.generate = _serving(self._generate_speaker, SAMPLES,
                                     tf.TensorSpec([], tf.int32, 'speaker'))
            self.generate_batch = _serving(self._generate_speakers, SAMPLES,
                                           tf.TensorSpec([None], tf.int32, 'speakers'))
        else:
            self.generate = _serving(self._generate_plain, SAMPLES)
            self.generate_batch = _serving(self._generate_streams, SAMPLES,
                                           tf.TensorSpec([], tf.int32, 'streams'))

    def signatures(self):
        """``{name: function}`` of this network's serving signatures."""
        names = ('vocode', 'vocode_batch', 'generate', 'generate_batch')
        return {name: getattr(self, name) for name in names if hasattr(self, name)}

    def _vocode(self, features, seed, temperature):
        return {'audio': self._vocode_batch(features[tf.newaxis], seed, temperature)['audio'][0]}

    def _vocode_batch(self, features, seed, temperature):
        net, description = self.net, self.description
        features, temperature = _checked(
            [tf.debugging.assert_positive(tf.shape(features)[1],
                                          'features must hold at least one frame'),
             tf.debugging.assert_all_finite(features, 'features must be finite'),
             _temperature_check(temperature)],
            features, temperature)
        # Every utterance's row draws the stream of key 0, as in generate.py.
        keys = tf.zeros([tf.shape(features)[0]], tf.int64)
        streams = generation.UniformStreams(seed, keys)
        start = generation.start_waveform(net, streams(0, 1)[:, 0])
        conditioning = generation.ConditioningRows(net, features, start.shape[1],
                                                   description.features)
        samples = tf.shape(features)[1] * description.lc_hop_length
        return self._audio(start, streams, samples, None, temperature, conditioning)

    def _generate_speaker(self, samples, speaker, seed, temperature):
        audio = self._generate_speakers(samples, speaker[tf.newaxis], seed, temperature)
        return {'audio': audio['audio'][0]}

    def _generate_speakers(self, samples, speakers, seed, temperature):
        cardinality = self.description.gc_cardinality
        (speakers,) = _checked(
            [tf.debugging.assert_non_negative(speakers, 'speaker ids must be >= 0'),
             tf.debugging.assert_less(speakers, cardinality,
                                      f'speaker ids must be below {cardinality}')],
            speakers)
        keys = tf.cast(speakers, tf.int64)  # stream 0 of each speaker
        return self._generated(samples, keys, speakers, seed, temperature)

    def _generate_plain(self, samples, seed, temperature):
        audio = self._generate_streams(samples, tf.constant(1), seed, temperature)
        return {'audio': audio['audio'][0]}

    def _generate_streams(self, samples, streams, seed, temperature):
        (streams,) = _checked([tf.debugging.assert_positive(
            streams, 'streams must be at least 1')], streams)
        keys = generation.stream_key(0, tf.range(streams, dtype=tf.int64))
        return self._generated(samples, keys, None, seed, temperature)

    def _generated(self, samples, keys, speakers, seed, temperature):
        """``samples`` of each of ``keys``' streams, after the start ``generate.py`` makes
        without a seed clip."""
        samples, temperature = _checked(
            [tf.debugging.assert_positive(samples, 'samples must be at least 1'),
             _temperature_check(temperature)],
            samples, temperature)
        streams = generation.UniformStreams(seed, keys)
        start = generation.start_waveform(self.net, streams(0, 1)[:, 0])
        return self._audio(start, streams, samples, speakers, temperature)

    def _audio(self, start, streams, samples, speakers, temperature, conditioning=None):
        codes = generation.generate_all(
            self.net, start, lambda begin, count: streams(begin + 1, count), samples,
            speakers, temperature, conditioning)
        return {'audio': tf.gather(self.pcm, codes)}


def _serving(function, *inputs):
    """``function`` as a serving signature: its ``inputs``, then the seed and temperature
    every generation takes."""
    return tf.function(function, autograph=False,
                       input_signature=[*inputs, SEED, TEMPERATURE])


def _temperature_check(temperature):
    return tf.debugging.assert_positive(temperature, 'temperature must be above 0')


def _checked(checks, *inputs):
    """``inputs`` as they are once ``checks`` have passed: everything computed from them
    waits for the checks, so that a bad input fails by its name, not in whichever op
    reads it first (a gather outside the speaker table, say)."""
    with tf.control_dependencies(checks):
        return [tf.identity(value) for value in inputs]


def check_exportable(description):
    """Refuses (``ValueError``, one line) a network that no signature could serve."""
    if description.gc_channels is not None and description.gc_cardinality is None:
        raise ValueError('cannot export a speaker-conditioned network without '
                         'gc_cardinality: its callers pass embeddings, not speaker ids')


def export(net, description, out_dir):
    """Writes the SavedModel of ``net`` (restored) to ``out_dir``, which must not exist:
    built beside it and renamed into place, so that a failed export leaves nothing."""
    check_exportable(description)
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    building = tempfile.mkdtemp(prefix='.export-', dir=parent)
    try:
        module = Generator(net, description, description.save(building))
        saved = os.path.join(building, 'model')
        tf.saved_model.save(module, saved, signatures=module.signatures())
        os.rename(saved, out_dir)
    finally:
        shutil.rmtree(building, ignore_errors=True)


def get_arguments():
    from .cli import ArgumentParser, add_checkpoint_flags
    parser = ArgumentParser(
        prog='python -m wavenet.export',
        description='Export a trained WaveNet as a SavedModel whose signatures generate')
    parser.add_argument('checkpoint', help='a checkpoint prefix, or a directory (its newest)')
    parser.add_argument('out_dir', help='where the SavedModel goes (must not exist)')
    add_checkpoint_flags(parser)
    return parser


def main(argv=None):
    from .cli import check_output_directory, disk_full, fail, native_stderr_silenced
    parser = get_arguments()
    args = parser.parse_args(argv)
    from . import checkpoints
    from .params import build_model
    try:
        if os.path.lexists(args.out_dir):
            raise ValueError(f'{args.out_dir} exists: give a new directory')
        check_output_directory(args.out_dir, 'OUT_DIR')
        prefix = checkpoints.find_checkpoint(args.checkpoint)
        description, source = checkpoints.network_description(
            prefix, args.wavenet_params, args.gc_channels, args.gc_cardinality)
        checkpoints.check_checkpoint(prefix, description, source)
        check_exportable(description)
    except ValueError as e:
        parser.error(str(e))
    try:
        with native_stderr_silenced():  # TensorFlow's first touch of the devices logs
            net = build_model(description, restoring=True)
            averaged = checkpoints.restore_model(net, prefix, averaged=args.ema)
            export(net, description, args.out_dir)
    except (tf.errors.OpError, OSError) as e:
        if not disk_full(e, args.out_dir):
            raise
        fail(parser.prog, f'no space left on device writing {args.out_dir}; nothing was '
             'written', status=1)
    weights = 'the average of the weights' if averaged else 'the weights'
    kind = 'vocode' if description.lc_channels is not None else 'generate'
    print(f'Exported {weights} of {prefix} to {args.out_dir} (signatures {kind}, '
          f'{kind}_batch)')
    return 0


def cli():
    """The command (``wavenet-export``): ``main`` with its exit status."""
    from .cli import run
    run(main)


if __name__ == '__main__':
    cli()
