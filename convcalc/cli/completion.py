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


# --------------------------------------------------------------------------- bash splits words at ':'

def join_colon_words(words: list[str]) -> tuple[list[str], str]:
    """Bash's COMP_WORDS as the words typed, and the part of the last one that bash completes.

    Bash breaks words at the characters of COMP_WORDBREAKS, ':' among them by default, so ``zoo:tfs`` reaches the
    completion as ``zoo``, ``:``, ``tfs`` (and ``zoo:`` as ``zoo``, ``:``), while readline replaces only the text
    after the last ':'. The words made of colons are joined to their neighbours again; the second value is what
    readline will replace the last word's start with nothing of: the prefix through its last ':' (empty when bash
    did not split it)."""
    joined: list[str] = []
    glue = False
    for word in words:
        if word and set(word) == {":"} and joined:
            joined[-1] += word
            glue = True
        elif glue:
            joined[-1] += word
            glue = False
        else:
            joined.append(word)
    last = joined[-1] if joined else ""
    split = len(joined) < len(words) and ":" in last
    return joined, last[:last.rfind(":") + 1] if split else ""


def _install_bash_colon_fix() -> None:
    """Typer's bash completion passes COMP_WORDS as bash split them: ``convcalc analyze zoo:tfs`` completed
    nothing (the SPEC was 'zoo', then two stray words). Its words are joined again here, and each answer loses the
    prefix readline keeps (``tfslim/vgg_16`` for ``zoo:tfs``), as bash-completion's __ltrim_colon_completions does."""
    try:
        from typer._completion_classes import BashComplete
    except ImportError:                       # a Typer without its bash class: its own completion is left alone
        return
    if getattr(BashComplete, "_convcalc_colons", False):
        return
    original_args, original_complete = BashComplete.get_completion_args, BashComplete.complete

    def get_completion_args(self):
        args, incomplete = original_args(self)
        words, self._convcalc_keep = join_colon_words([*args, incomplete])
        return words[:-1], words[-1]

    def complete(self):
        self._convcalc_keep = ""
        out = original_complete(self)
        keep = self._convcalc_keep
        if not keep:
            return out
        return "\n".join(line[len(keep):] if line.startswith(keep) else line for line in out.split("\n"))

    BashComplete.get_completion_args, BashComplete.complete = get_completion_args, complete
    BashComplete._convcalc_colons = True


_install_bash_colon_fix()
