"""docs/CLI.md stays true to the real ``sgus`` parser (``sgus_cli.main.build_parser``).

Every subcommand (nested ones too, e.g. ``sgus user add`` if ``user`` gets sub-subcommands) has a
``## sgus <name>`` section; every flag, positional, choice and default of a subcommand is written
in its own section; and no section documents a command that does not exist.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sgus_cli.main import build_parser

DOC = Path(__file__).resolve().parent.parent / "docs/CLI.md"
HEADING = re.compile(r"^## (sgus(?: \S+)*)\s*$")


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse._SubParsersAction]:
    return [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]


def _walk(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every subcommand below ``parser`` as ``("sgus user add", parser)``, depth first."""
    found = []
    seen: set[int] = set()
    for action in _subparsers(parser):
        for name, child in action.choices.items():
            if id(child) in seen:  # an alias of a command already listed
                continue
            seen.add(id(child))
            full = f"{path} {name}"
            found.append((full, child))
            found.extend(_walk(child, full))
    return found


COMMANDS = dict(_walk(build_parser(), "sgus"))


def _sections() -> dict[str, str]:
    """docs/CLI.md's ``## sgus ...`` sections by heading (fenced code blocks ignored for
    headings); a section runs to the next level-2 heading."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            match = HEADING.match(line)
            current = sections.setdefault(match.group(1), []) if match else None
            continue
        if current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


SECTIONS = _sections()


def _arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's own arguments (no help flag, no nested-subcommand selector)."""
    return [
        a
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
    ]


def _flags(action: argparse.Action) -> list[str]:
    """The spellings to look for: every long form, or the short form when there is no long one."""
    long = [o for o in action.option_strings if o.startswith("--")]
    return long or list(action.option_strings)


def test_parser_walk_found_the_commands():
    """The walk over the parser finds the subcommands the contract promises."""
    for name in ("sgus import", "sgus export", "sgus predict", "sgus train", "sgus evaluate"):
        assert name in COMMANDS, f"{name} not found in build_parser(): {sorted(COMMANDS)}"


def test_parser_does_not_import_tensorflow():
    """Importing ``sgus_cli.main`` and building its parser, in a fresh interpreter, never loads
    TensorFlow, Keras or Streamlit."""
    probe = (
        "import sys; from sgus_cli.main import build_parser; build_parser(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', "
        "'streamlit'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.strip() == "[]", f"build_parser() imported {done.stdout.strip()}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_subcommand_has_a_section(command):
    """Every subcommand of the parser has a ``## sgus <name>`` heading in docs/CLI.md."""
    assert command in SECTIONS, f"docs/CLI.md has no '## {command}' heading"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_is_in_its_section(command):
    """Every option of a subcommand is written (in backticks) in that subcommand's section."""
    section = SECTIONS.get(command, "")
    missing = [
        flag
        for action in _arguments(COMMANDS[command])
        for flag in _flags(action)
        if f"`{flag}`" not in section
    ]
    assert not missing, f"'## {command}' in docs/CLI.md does not document {', '.join(missing)}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_positional_and_choice_is_in_its_section(command):
    """Every positional (its metavar, or each of its choices) and every choice of an option is
    written in backticks in the subcommand's section."""
    section = SECTIONS.get(command, "")
    missing = []
    for action in _arguments(COMMANDS[command]):
        if action.choices:
            words = [str(choice) for choice in action.choices]
        elif not action.option_strings:
            words = [action.metavar or action.dest.upper()]
        else:
            continue
        where = "/".join(_flags(action)) or action.dest
        missing += [f"{word} (of {where})" for word in words if f"`{word}`" not in section]
    assert not missing, f"'## {command}' in docs/CLI.md does not document {', '.join(missing)}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_default_is_in_its_section(command):
    """Every non-trivial default value of a subcommand's options is written in its section."""
    section = SECTIONS.get(command, "")
    missing = [
        f"{'/'.join(_flags(action))} default {action.default}"
        for action in _arguments(COMMANDS[command])
        if action.option_strings
        and isinstance(action.default, str | int | float)
        and not isinstance(action.default, bool)
        and str(action.default) not in section
    ]
    assert not missing, f"'## {command}' in docs/CLI.md does not state {', '.join(missing)}"


def test_every_section_names_a_real_subcommand():
    """Every ``## sgus <name>`` heading in docs/CLI.md names a subcommand the parser has."""
    unknown = sorted(set(SECTIONS) - set(COMMANDS))
    assert not unknown, f"docs/CLI.md documents commands the parser lacks: {', '.join(unknown)}"


def test_top_level_options_are_documented():
    """The options of ``sgus`` itself (e.g. ``--version``) are mentioned in docs/CLI.md."""
    text = DOC.read_text(encoding="utf-8")
    missing = [
        flag for action in _arguments(build_parser()) for flag in _flags(action) if flag not in text
    ]
    assert not missing, f"docs/CLI.md does not mention the top-level {', '.join(missing)}"
