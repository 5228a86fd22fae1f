"""The toolkit as a package: pip builds and installs it, its tools run from any folder
(with the packaged network descriptions when the folder has none), and what it declares
is what the checkout's requirements files say."""
import filecmp
import os
import re
import subprocess
import sys
import tomllib

import pytest
from helpers import ROOT

from wavenet.params import PACKAGED, params_file


def requirements(name):
    """The requirements a requirements file lists (its -r includes followed)."""
    listed = []
    with open(os.path.join(ROOT, name)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line.startswith('-r '):
                listed += requirements(line[3:].strip())
            elif line:
                listed.append(line)
    return listed


def project():
    with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
        return tomllib.load(f)['project']


def test_the_package_declares_what_the_requirements_files_list():
    declared = project()
    base = declared['dependencies']
    assert requirements('requirements.txt') == base
    gpu = declared['optional-dependencies']['gpu']
    assert requirements('requirements_gpu.txt') == gpu + [r for r in base
                                                         if not r.startswith('tensorflow')]
    assert requirements('requirements_test.txt') == base + \
        declared['optional-dependencies']['test']


def test_the_packaged_network_descriptions_are_the_checkouts():
    for name in ('wavenet_params.json', 'demo/wavenet_params.json', 'demo/vocoder_params.json'):
        assert filecmp.cmp(os.path.join(ROOT, name), os.path.join(PACKAGED, name),
                           shallow=False), name


def test_a_params_file_missing_here_is_read_from_the_package(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert params_file('demo/vocoder_params.json') == \
        os.path.join(PACKAGED, 'demo', 'vocoder_params.json')
    assert params_file('./wavenet_params.json') == os.path.join(PACKAGED, 'wavenet_params.json')
    said = capsys.readouterr().out.splitlines()
    assert said[0] == (f'demo/vocoder_params.json is not in {tmp_path}: reading the '
                       f"package's {PACKAGED}/demo/vocoder_params.json")
    (tmp_path / 'wavenet_params.json').write_text('{}')  # the folder's own wins
    assert params_file('wavenet_params.json') == 'wavenet_params.json'
    assert params_file('other.json') == 'other.json'  # not packaged: refused as it was
    assert capsys.readouterr().out == ''


def run(command, cwd, env=None, timeout=300):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f'{command}: {result.stdout}\n{result.stderr}'
    return result


@pytest.mark.timeout(900)
def test_the_wheel_installs_and_its_tools_run_from_an_empty_folder(tmp_path):
    """The wheel, built from the checkout, installed in a fresh virtual environment (which
    sees this Python's packages, TensorFlow among them, so nothing is downloaded): its
    commands train five steps of the demo network on the demo corpus and generate from
    the checkpoint, from a folder without the checkout's files."""
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
         '--wheel-dir', str(tmp_path / 'dist'), ROOT], cwd=tmp_path)
    wheel, = (tmp_path / 'dist').glob('wavenet_tf2-*.whl')
    venv = tmp_path / 'venv'
    run([sys.executable, '-m', 'venv', '--system-site-packages', str(venv)], cwd=tmp_path)
    bin_dir = venv / 'bin'
    run([str(bin_dir / 'python'), '-m', 'pip', 'install', '--no-index', str(wheel)],
        cwd=tmp_path)
    empty = tmp_path / 'empty'
    empty.mkdir()
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    imported = run([str(bin_dir / 'python'), '-c', 'import wavenet; print(wavenet.__file__, '
                    'wavenet.__version__)'], cwd=empty, env=env)
    assert imported.stdout.startswith(str(venv)) and project()['name']
    trained = run([str(bin_dir / 'wavenet-train'), f'--data_dir={ROOT}/demo/corpus',
                   '--wavenet_params=demo/wavenet_params.json', '--num_steps=5',
                   '--sample_size=4000', '--silence_threshold=0.05', '--logdir=logdir',
                   # The package is under test, not XLA, whose compiling would be most of
                   # the run.
                   '--jit_compile=false'],
                  cwd=empty, env=env)
    assert f"reading the package's {venv}" in trained.stdout
    assert re.search(r'^step 4 - loss', trained.stdout, re.M), trained.stdout
    generated = run([str(bin_dir / 'wavenet-generate'), 'logdir', '--samples', '300',
                     '--wav_out_path', 'out.wav'], cwd=empty, env=env)
    assert 'The result was saved to out.wav' in generated.stdout
    assert sorted(os.listdir(empty)) == ['logdir', 'out.wav']
    for tool in ('wavenet-export', 'wavenet-convert-tf1'):
        assert 'usage:' in run([str(bin_dir / tool), '--help'], cwd=empty, env=env).stdout


# Run by a fresh Python: what the tools' import of TensorFlow leaves loaded.
IMPORTS_TENSORFLOW = """
import sys
from wavenet import load_tensorflow
load_tensorflow()
print(sorted(name for name in ('sklearn', 'matplotlib', 'IPython') if name in sys.modules))
from matplotlib.figure import Figure  # the toolkit's own pictures still draw
print(type(Figure()).__name__)
"""


def test_the_tools_import_tensorflow_without_what_keras_loads_for_plots_and_wrappers():
    result = subprocess.run([sys.executable, '-c', IMPORTS_TENSORFLOW], capture_output=True,
                            text=True, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['[]', 'Figure']
