"""The README and docs/ cannot drift from the tools: every flag a tool's parser defines is
in its reference page, every flag a page's table lists is in the parser, and every command
line the pages give a tool parses with that tool's own parser (parsed, never run)."""
import glob
import importlib
import os
import re
import shlex

import pytest
from helpers import ROOT

from wavenet import convert_tf1, export


def script_parser(name):
    """``get_arguments()`` of a tool (``wavenet/train.py``, ``wavenet/generate.py``), which the
    top-level script of that name runs."""
    return importlib.import_module(f'wavenet.{name}').get_arguments()


# How a command line names the tool, its parser, and the page whose table lists its flags.
TOOLS = {
    'train.py': (lambda: script_parser('train'), 'docs/training.md'),
    'generate.py': (lambda: script_parser('generate'), 'docs/generating.md'),
    '-m wavenet.export': (export.get_arguments, 'docs/serving.md'),
    '-m wavenet.convert_tf1': (convert_tf1.get_arguments, 'docs/training.md'),
}
PAGES = [os.path.join(ROOT, 'README.md')] + sorted(glob.glob(os.path.join(ROOT, 'docs',
                                                                           '*.md')))
# A row of a flag table: | `--flag` | ...
TABLE_FLAG = re.compile(r'^\| `(--[a-z0-9_]+)`', re.M)


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def flags_of(parser):
    return {option for action in parser._actions for option in action.option_strings
            if option.startswith('--') and option != '--help'}


def tables_of(page, tool):
    """The flags listed in the tables of ``page``'s sections whose heading names ``tool``
    (``## Flags of train.py``)."""
    sections = re.split(r'^#+ ', read(page), flags=re.M)
    named = [s for s in sections if tool.split()[-1] in s.split('\n', 1)[0]]
    assert named, f'{page} has no heading naming {tool}'
    return set(TABLE_FLAG.findall('\n'.join(named)))


def command_lines():
    """``(page, tool, argv)`` of every shell command line in a ``bash`` block of the
    README and docs/ that runs one of the tools."""
    found = []
    for page in PAGES:
        for block in re.findall(r'```bash\n(.*?)```', read(page), re.S):
            for line in block.splitlines():
                words = shlex.split(line, comments=True)
                while words and re.match(r'^[A-Z_]+=', words[0]):  # VAR=value prefixes
                    words.pop(0)
                if not words or words[0] != 'python':
                    continue
                for tool in TOOLS:
                    if ' '.join(words[1:]).startswith(tool):
                        found.append((os.path.relpath(page, ROOT), tool,
                                      words[1 + len(tool.split()):]))
    return found


@pytest.mark.parametrize('tool', TOOLS)
def test_every_flag_of_a_tool_is_in_its_reference_table(tool):
    make_parser, page = TOOLS[tool]
    missing = flags_of(make_parser()) - tables_of(page, tool)
    assert not missing, f'{page} does not document {sorted(missing)} of {tool}'


@pytest.mark.parametrize('tool', TOOLS)
def test_every_flag_in_a_reference_table_is_a_flag_of_the_tool(tool):
    make_parser, page = TOOLS[tool]
    unknown = tables_of(page, tool) - flags_of(make_parser())
    assert not unknown, f'{page} documents {sorted(unknown)}, which {tool} does not have'


def test_every_documented_command_line_parses():
    lines = command_lines()
    # The two quick starts, the vocoder's recipes, serving and the original's checkpoints.
    assert {tool for _, tool, _ in lines} == set(TOOLS)
    assert sum(page == 'README.md' for page, _, _ in lines) >= 8
    parsers = {tool: make_parser() for tool, (make_parser, _) in TOOLS.items()}
    for parser in parsers.values():
        parser.allow_abbrev = False  # a page spells every flag in full
    for page, tool, argv in lines:
        try:
            parsers[tool].parse_args(argv)
        except SystemExit:
            pytest.fail(f'{page}: `python {tool} {" ".join(argv)}` does not parse')


def test_a_misspelled_or_removed_flag_is_caught(capsys):
    parser = script_parser('train')
    parser.allow_abbrev = False
    for misspelled in ('--num_stepz=5', '--num_step=5'):
        with pytest.raises(SystemExit):
            parser.parse_args([misspelled])
    assert "unrecognized arguments: --num_stepz=5" in capsys.readouterr().err
    flags = flags_of(parser)
    documented = tables_of('docs/training.md', 'train.py')
    assert '--jit_compile' in flags and '--jit_compile' in documented
    parser._actions = [a for a in parser._actions if '--jit_compile' not in a.option_strings]
    assert documented - flags_of(parser) == {'--jit_compile'}
