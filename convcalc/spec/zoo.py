"""The model zoo: the specs shipped with convcalc, found by name.

The repository keeps them in ``specs/`` (one copy); the wheel installs that folder as ``convcalc/zoo/``
(pyproject's package-dir mapping). So ``convcalc analyze resnet50`` works from any directory: a spec argument that
names no file and has no directory part is looked up here (``resnet50``, ``resnet50.yaml``, ``tfslim/vgg_16``), and
``zoo:NAME`` names a zoo spec explicitly (also in ``include:``). A file of that name in the working directory wins,
as a user expects of a path, and an explicit path is never silently replaced: one that does not exist (or is a
directory) but whose file name is a zoo model's is an error that says how to name the zoo's (`ZooHint`).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConvcalcError, Location, SpecError
from .files import shown_path

PREFIX = "zoo:"
LIBRARIES = "blocks/"          # the zoo's block libraries: included by specs, not analysed alone
_PACKAGE = Path(__file__).resolve().parent.parent


def zoo_directory() -> Path | None:
    """Where the zoo's specs are: ``convcalc/zoo`` in an installed wheel, the repository's ``specs/`` in a checkout
    (an editable install included); None if neither exists."""
    for candidate in (_PACKAGE / "zoo", _PACKAGE.parent / "specs"):
        if candidate.is_dir():
            return candidate
    return None


def zoo_names(libraries: bool = False) -> list[str]:
    """Every zoo spec's name (``resnet50``, ``tfslim/vgg_16``), sorted; ``libraries``: also the block libraries
    (``blocks/mobilenet_v3``: blocks for ``include: zoo:blocks/mobilenet_v3``, not networks)."""
    directory = zoo_directory()
    if directory is None:
        return []
    names = (path.relative_to(directory).with_suffix("").as_posix()
             for path in [*directory.glob("*.yaml"), *directory.glob("*/*.yaml")])
    return sorted(name for name in names if libraries or not name.startswith(LIBRARIES))


def zoo_libraries() -> list[str]:
    """The zoo's block libraries (``blocks/mobilenet_v3``: for ``include: zoo:blocks/mobilenet_v3``), sorted."""
    return [name for name in zoo_names(libraries=True) if name.startswith(LIBRARIES)]


def zoo_path(name: str) -> Path:
    """The zoo spec called ``name`` (with or without ``zoo:`` and ``.yaml``), or an error listing the zoo."""
    bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
    bare = bare[:-len(".yaml")] if bare.endswith(".yaml") else bare
    names = zoo_names()
    if bare in names:
        return zoo_directory() / f"{bare}.yaml"  # type: ignore[operator]
    if bare.startswith(LIBRARIES):           # blocks/...: the block libraries are the names to suggest
        names = zoo_libraries()
    from difflib import get_close_matches
    close = get_close_matches(bare, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; the zoo has: {', '.join(names)}" if names else ""
    if name.startswith(PREFIX):              # 'zoo:NAME' names the zoo alone: no file was looked for
        raise ConvcalcError(f"no zoo model '{bare}'{hint} (convcalc zoo lists them)")
    raise ConvcalcError(f"no spec file '{name}' and no zoo model '{bare}'{hint} (convcalc zoo lists them)")


def zoo_file(name: str) -> Path | None:
    """The zoo's file called ``name`` (with or without ``zoo:`` and ``.yaml``): a model or a block library
    (``blocks/mobilenet_v3``); None if the zoo has none of that name."""
    bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
    bare = bare[:-len(".yaml")] if bare.endswith(".yaml") else bare
    return zoo_directory() / f"{bare}.yaml" if bare in zoo_names(libraries=True) else None  # type: ignore[operator]


def zoo_include(entry: str, loc: Location | None) -> Path:
    """The file of ``include: zoo:NAME`` (a block library such as ``zoo:blocks/mobilenet_v3``, or a spec's
    blocks), or a `SpecError` at ``loc`` naming the libraries."""
    bare = entry[len(PREFIX):]
    bare = bare[:-len(".yaml")] if bare.endswith(".yaml") else bare
    if bare in zoo_names(libraries=True):
        return zoo_directory() / f"{bare}.yaml"  # type: ignore[operator]
    libraries = [name for name in zoo_names(libraries=True) if name.startswith(LIBRARIES)]
    raise SpecError(f"include '{entry}': the zoo has no file '{bare}'; its block libraries: "
                    f"{', '.join(PREFIX + name for name in libraries) or 'none'}", loc)


class ZooHint(ConvcalcError):
    """A spec path that cannot be read although its file name names a zoo model (``specs/vgg16.yaml`` outside the
    repository, a directory ``resnet50/``): the message says how to name the zoo's model, which is never read in
    the path's place. The CLI writes the command in it (`for_command`: ``convcalc rf vgg16``)."""

    def __init__(self, problem: str, name: str, explicit: bool = False):
        self.problem, self.zoo_name = problem, name
        self.argument = PREFIX + name if explicit or os.path.lexists(name) else name
        super().__init__(f"{problem} (the zoo has '{name}': load_spec('{self.argument}'))")

    def for_command(self, command: str) -> str:
        """The message with ``command`` (``convcalc rf``) and the argument that names the zoo's model."""
        return f"{self.problem} (the zoo has '{self.zoo_name}': {command} {self.argument})"


def zoo_name_of(path: str | os.PathLike) -> str | None:
    """The zoo model a path's file name names (``specs/vgg16.yaml``: vgg16; ``specs/tfslim/vgg_16.yaml``:
    tfslim/vgg_16; ``resnet50/``: resnet50), or None."""
    parts = Path(os.fspath(path)).parts
    if not parts:
        return None
    last = parts[-1]
    for suffix in (".yaml", ".yml"):
        last = last[:-len(suffix)] if last.endswith(suffix) else last
    names = zoo_names()
    for candidate in ("/".join([*parts[-2:-1], last]), last):     # tfslim/vgg_16, then vgg16
        if candidate in names:
            return candidate
    return None


def spec_location(path: str | os.PathLike) -> Path:
    """The file a spec argument means: ``zoo:NAME`` the zoo's; a path that exists, that path; a name of the zoo
    (``resnet50``, ``tfslim/vgg_16``), the zoo's spec; any other ``*.yaml`` path itself (its error says "no such
    file"), unless it does not exist and its file name is a zoo model's (`ZooHint`); a directory named like a zoo
    model, `ZooHint`; any other name, an error naming the closest zoo models."""
    text = os.fspath(path)
    if isinstance(text, bytes) or "\0" in text or len(text) > 255:
        return Path(path)                      # the file reader says what is wrong with it
    if text.startswith(PREFIX):
        return zoo_path(text)
    candidate = Path(text)
    if candidate.is_dir() and zoo_name_of(text):
        raise ZooHint(f"{shown_path(text)} is a directory, not a spec file", zoo_name_of(text), explicit=True)
    if candidate.exists():
        return candidate
    bare = text[:-len(".yaml")] if text.endswith(".yaml") else text
    if bare in zoo_names():
        return zoo_path(bare)
    if candidate.suffix in (".yaml", ".yml") or os.sep in text or (os.altsep and os.altsep in text):
        if not os.path.lexists(text) and zoo_name_of(text):
            raise ZooHint(f"no such spec file: {shown_path(text)}", zoo_name_of(text))
        return candidate
    return zoo_path(text)
