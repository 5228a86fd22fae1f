"""A recorded voice for the vocoder, in one command: the English prompts of the Asterisk
PBX, read by Allison Smith (en-US, studio recordings coded as G.722 at 16 kHz; licence
CC-BY-SA-3.0), decoded to 16 kHz mono 16-bit wavs.

    python demo/fetch_real_voice.py [--out demo/real_voice] [--package FILE]

fetches Debian's package ``asterisk-core-sounds-en-g722`` through ``apt-get download``
where apt exists, otherwise the same files from the Asterisk project's sound release
archive (or takes either file from ``--package``), decodes every prompt with FFmpeg's
G.722 decoder (through PyAV), and writes

    OUT/corpus/<prompt>.wav    every prompt of at least 1 s but the held-out ones
    OUT/heldout/<prompt>.wav   the twelve prompts of HELD_OUT (2 to 4.5 s each)
    OUT/CREDITS                who recorded them, and their licence

No audio is kept in the repository; OUT is written whole or not at all.
"""
import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

import numpy as np
import soundfile

PACKAGE = 'asterisk-core-sounds-en-g722'
ARCHIVE_URL = ('https://downloads.asterisk.org/pub/telephony/sounds/releases/'
               'asterisk-core-sounds-en-g722-1.6.1.tar.gz')
SAMPLE_RATE = 16000
SHORTEST_SECONDS = 1.0
# Twelve prompts of 2 to 4.5 s, none with a near twin among the others (the conference
# prompts come in pairs that differ by a word, so none of them is held out).
HELD_OUT = (
    'agent-newlocation', 'at-tone-time-exactly', 'cannot-complete-as-dialed',
    'demo-nomatch', 'dir-nomore', 'priv-introsaved', 'privacy-unident', 'queue-holdtime',
    'tt-monkeysintro', 'tt-weasels', 'vm-mailboxfull', 'vm-nobodyavail',
)
CREDITS = """\
Allison Smith's English prompts of the Asterisk PBX ({source}).
Recorded by Allison Smith (http://www.theivrvoice.com); financial contributions by
Digium, Inc. (http://www.digium.com). Licence: Creative Commons Attribution-ShareAlike 3.0
(CC-BY-SA-3.0, https://creativecommons.org/licenses/by-sa/3.0/).
Decoded from G.722 to 16 kHz 16-bit wavs by demo/fetch_real_voice.py.
"""


def fail(message):
    print(f'fetch_real_voice.py: error: {message}', file=sys.stderr)
    sys.exit(2)


def fetch(folder):
    """The path of the package (a .deb) or release archive (.tar.gz), downloaded into
    ``folder``; a one-line error when neither can be had."""
    reasons = []
    if shutil.which('apt-get'):
        result = subprocess.run(['apt-get', 'download', PACKAGE], cwd=folder,
                                capture_output=True, text=True)
        debs = [name for name in os.listdir(folder) if name.endswith('.deb')]
        if result.returncode == 0 and debs:
            return os.path.join(folder, debs[0])
        reasons.append(f'apt-get download {PACKAGE} failed '
                       f'({(result.stderr.strip().splitlines() or ["no output"])[-1]})')
    else:
        reasons.append('apt-get is not on this machine')
    path = os.path.join(folder, os.path.basename(ARCHIVE_URL))
    try:
        with urllib.request.urlopen(ARCHIVE_URL, timeout=60) as response, \
                open(path, 'wb') as out:
            shutil.copyfileobj(response, out)
        return path
    except OSError as e:
        reasons.append(f'{ARCHIVE_URL} could not be fetched ({e})')
    fail('; '.join(reasons) + f'. Download {PACKAGE} (Debian) or that archive where you can '
         'and pass it with --package FILE.')


def prompts(path):
    """``{name: G.722 bytes}`` of every prompt in a .deb or .tar.gz, named by its path
    below the sounds folder without the extension (``digits/7``)."""
    with open(path, 'rb') as f:
        data = f.read()
    if data.startswith(b'!<arch>\n'):  # a .deb: an ar archive whose data.tar.* holds them
        data = _ar_member(data, 'data.tar')
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:*') as archive:
        for member in archive:
            name = member.name.replace('\\', '/')
            if member.isfile() and name.endswith('.g722'):
                name = name.split('en_US_f_Allison/', 1)[-1].lstrip('./')
                found[name[:-len('.g722')]] = archive.extractfile(member).read()
    return found


def _ar_member(data, prefix):
    """The contents of the first member of ar archive ``data`` whose name starts with
    ``prefix``."""
    offset = 8
    while offset + 60 <= len(data):
        header = data[offset:offset + 60]
        name, size = header[:16].decode().strip().rstrip('/'), int(header[48:58])
        if name.startswith(prefix):
            return data[offset + 60:offset + 60 + size]
        offset += 60 + size + size % 2
    raise ValueError(f'no {prefix}* in the package')


def decode(g722):
    """16-bit samples (int16, 16 kHz mono) of G.722 bytes, by FFmpeg's decoder."""
    import av
    with av.open(io.BytesIO(g722), format='g722') as container:
        stream = container.streams.audio[0]
        if stream.codec_context.sample_rate != SAMPLE_RATE:
            raise ValueError(f'decoded at {stream.codec_context.sample_rate} Hz')
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
    return np.concatenate(frames).astype(np.int16) if frames else np.zeros(0, np.int16)


def write_corpus(found, out, source):
    """The wavs of every usable prompt into ``out`` (built beside it, then renamed)."""
    missing = [name for name in HELD_OUT if name not in found]
    if missing:
        fail(f'the package holds no prompt {missing[0]} (is it {PACKAGE}?)')
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    building = tempfile.mkdtemp(prefix='.building-', dir=parent)
    try:
        for folder in ('corpus', 'heldout'):
            os.makedirs(os.path.join(building, folder))
        kept = 0
        for name, g722 in sorted(found.items()):
            if name.startswith('silence/'):
                continue
            samples = decode(g722)
            held = name in HELD_OUT
            if not held and len(samples) < SHORTEST_SECONDS * SAMPLE_RATE:
                continue
            path = os.path.join(building, 'heldout' if held else 'corpus',
                                name.replace('/', '-') + '.wav')
            soundfile.write(path, samples, SAMPLE_RATE, subtype='PCM_16')
            kept += not held
        with open(os.path.join(building, 'CREDITS'), 'w') as f:
            f.write(CREDITS.format(source=source))
        os.rename(building, out)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return kept


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), 'real_voice'),
                        help='folder to write (default: demo/real_voice)')
    parser.add_argument('--package', help=f'{PACKAGE}_*.deb or {os.path.basename(ARCHIVE_URL)}'
                                          ' already downloaded')
    args = parser.parse_args(argv)
    if os.path.exists(args.out):
        print(f'{args.out} is already there; remove it to fetch the prompts again.')
        return
    with tempfile.TemporaryDirectory() as scratch:
        package = args.package or fetch(scratch)
        try:
            found = prompts(package)
        except (OSError, ValueError, tarfile.TarError) as e:
            fail(f'{package}: cannot read it as {PACKAGE} ({str(e).splitlines()[0]})')
        kept = write_corpus(found, args.out, os.path.basename(package))
    print(f'{args.out}: {kept} prompts in corpus/, {len(HELD_OUT)} held out in heldout/ '
          '(CC-BY-SA-3.0, see CREDITS)')


if __name__ == '__main__':
    main()
