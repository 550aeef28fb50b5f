"""Shell completion of the spec arguments (``--install-completion``): the zoo's names and the files here.

Typer's completion scripts print what these return and nothing else (no file completion of their own), so the
files and directories that could be a spec are listed here too: directories (with a trailing '/'), ``*.yaml``,
``*.yml`` and ``*.onnx`` files, hidden ones only when the word being completed starts with a dot.
"""

from __future__ import annotations

import glob
import os

from ..spec.zoo import PREFIX, zoo_libraries, zoo_names

SPEC_SUFFIXES = (".yaml", ".yml", ".onnx")


def _files(incomplete: str) -> list[str]:
    """The directories and spec files whose path starts with ``incomplete``."""
    hidden = os.path.basename(incomplete).startswith(".")
    found = []
    for path in sorted(glob.glob(glob.escape(incomplete) + "*")):
        if os.path.basename(path).startswith(".") and not hidden:
            continue
        if os.path.isdir(path):
            found.append(path + "/")
        elif path.lower().endswith(SPEC_SUFFIXES):
            found.append(path)
    return found


def _zoo(incomplete: str, libraries: bool) -> list[str]:
    """Zoo names starting with ``incomplete``: bare (``resnet50``), or after ``zoo:`` (with the block libraries
    where they are taken)."""
    if incomplete.startswith(PREFIX):
        names = [*zoo_names(), *(zoo_libraries() if libraries else [])]
        return [PREFIX + name for name in names if (PREFIX + name).startswith(incomplete)]
    names = [*zoo_names(), *(zoo_libraries() if libraries else [])]
    return [name for name in names if name.startswith(incomplete)]


def complete_spec(incomplete: str) -> list[str]:
    """SPEC of analyze, run, rf: spec files and directories here, then zoo models (``resnet50``, ``zoo:...``)."""
    return _files(incomplete) + [name for name in _zoo(incomplete, False) if not os.path.lexists(name)]


def complete_lint_path(incomplete: str) -> list[str]:
    """PATH of lint: files and directories here, then zoo models and block libraries."""
    return _files(incomplete) + [name for name in _zoo(incomplete, True) if not os.path.lexists(name)]


def complete_zoo_name(incomplete: str) -> list[str]:
    """NAME of zoo: the zoo's models and block libraries."""
    return _zoo(incomplete, True)
