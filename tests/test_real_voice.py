"""demo/fetch_real_voice.py, offline: G.722 decoded to the tone that was coded (length,
rate, level, pitch), a Debian package and the Asterisk release archive turned into the
corpus and its held-out prompts, and one line when neither apt nor the network is there."""
import importlib.util
import io
import os
import tarfile

import av
import numpy as np
import pytest
import soundfile
from helpers import ROOT

spec = importlib.util.spec_from_file_location(
    'fetch_real_voice', os.path.join(ROOT, 'demo', 'fetch_real_voice.py'))
fetch_real_voice = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch_real_voice)
RATE = fetch_real_voice.SAMPLE_RATE


def tone(seconds, frequency=440.0, level=0.3):
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def g722(samples):
    """``samples`` coded as raw G.722, as the Asterisk prompts are, by FFmpeg's encoder."""
    buffer = io.BytesIO()
    with av.open(buffer, 'w', format='g722') as container:
        stream = container.add_stream('g722', rate=RATE, layout='mono')
        frame = av.AudioFrame.from_ndarray(samples[np.newaxis], format='s16', layout='mono')
        frame.sample_rate = RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


def test_a_g722_prompt_decodes_to_the_tone_that_was_coded():
    samples = fetch_real_voice.decode(g722(tone(1.5, 440.0, 0.3)))
    assert samples.dtype == np.int16 and len(samples) == 1.5 * RATE
    rms = np.sqrt(np.mean((samples / 32768.0) ** 2))
    assert 20 * np.log10(rms / (0.3 / np.sqrt(2))) == pytest.approx(0, abs=0.2)  # dB
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) * RATE / len(samples) == pytest.approx(440, abs=1)


# A package of the prompts' shape: the held-out twelve, two of training length, one too
# short to train on, and a silence file.
PROMPTS = {**{name: 2.5 for name in fetch_real_voice.HELD_OUT},
           'vm-goodbye': 1.2, 'digits/7': 1.1, 'letters/a': 0.5, 'silence/1': 1.0}


def tar_of(prefix, compression):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f'w:{compression}') as archive:
        for index, (name, seconds) in enumerate(PROMPTS.items()):
            data = g722(tone(seconds, 200.0 + 10 * index))
            member = tarfile.TarInfo(f'{prefix}{name}.g722')
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def deb_of(data_tar):
    """A .deb as dpkg-deb builds one: an ar archive of debian-binary, control and data."""
    members = [(b'debian-binary', b'2.0\n'), (b'control.tar.xz', b''),
               (b'data.tar.xz', data_tar)]
    out = b'!<arch>\n'
    for name, data in members:
        out += (name.ljust(16) + b'0'.ljust(12) + b'0'.ljust(6) + b'0'.ljust(6)
                + b'100644'.ljust(8) + str(len(data)).encode().ljust(10) + b'`\n')
        out += data + b'\n' * (len(data) % 2)
    return out


@pytest.mark.parametrize('kind', ['deb', 'release archive'])
def test_the_package_becomes_a_corpus_and_its_held_out_prompts(tmp_path, kind):
    if kind == 'deb':
        package = tmp_path / f'{fetch_real_voice.PACKAGE}_1.6.1-1_all.deb'
        package.write_bytes(deb_of(tar_of('./usr/share/asterisk/sounds/en_US_f_Allison/',
                                          'xz')))
    else:
        package = tmp_path / 'asterisk-core-sounds-en-g722-1.6.1.tar.gz'
        package.write_bytes(tar_of('', 'gz'))
    out = tmp_path / 'real_voice'
    fetch_real_voice.main(['--out', str(out), '--package', str(package)])
    assert sorted(os.listdir(out / 'corpus')) == ['digits-7.wav', 'vm-goodbye.wav']
    assert sorted(os.listdir(out / 'heldout')) == sorted(
        f'{name}.wav' for name in fetch_real_voice.HELD_OUT)
    audio, rate = soundfile.read(str(out / 'corpus' / 'vm-goodbye.wav'), dtype='int16')
    assert rate == RATE and len(audio) == int(1.2 * RATE)
    assert 'CC-BY-SA-3.0' in (out / 'CREDITS').read_text()
    assert sorted(os.listdir(tmp_path)) == sorted([package.name, 'real_voice'])  # no more


def test_without_apt_or_network_one_line_says_what_to_do(tmp_path, monkeypatch, capsys):
    def unreachable(*args, **kwargs):
        raise OSError('Network is unreachable')

    monkeypatch.setattr(fetch_real_voice.shutil, 'which', lambda name: None)
    monkeypatch.setattr(fetch_real_voice.urllib.request, 'urlopen', unreachable)
    with pytest.raises(SystemExit) as exit_info:
        fetch_real_voice.main(['--out', str(tmp_path / 'real_voice')])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count('\n') == 1 and error.startswith('fetch_real_voice.py: error: ')
    assert 'apt-get is not on this machine' in error and '--package FILE' in error
    assert os.listdir(tmp_path) == []


def test_a_file_that_is_not_the_package_is_one_line(tmp_path, capsys):
    (tmp_path / 'other.deb').write_bytes(b'not a package')
    with pytest.raises(SystemExit) as exit_info:
        fetch_real_voice.main(['--out', str(tmp_path / 'out'), '--package',
                               str(tmp_path / 'other.deb')])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count('\n') == 1
    assert not (tmp_path / 'out').exists()
