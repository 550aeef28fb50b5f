"""The model zoo: the specs shipped with convcalc, found by name.

The repository keeps them in ``specs/`` (one copy); the wheel installs that folder as ``convcalc/zoo/``
(pyproject's package-dir mapping). So ``convcalc analyze resnet50`` works from any directory: a spec argument that
names no file and has no directory part is looked up here (``resnet50``, ``resnet50.yaml``, ``tfslim/vgg_16``), and
``zoo:NAME`` names a zoo spec explicitly (also in ``include:``). A file of that name in the working directory wins,
as a user expects of a path.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConvcalcError, Location, SpecError

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


def zoo_path(name: str) -> Path:
    """The zoo spec called ``name`` (with or without ``zoo:`` and ``.yaml``), or an error listing the zoo."""
    bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
    bare = bare[:-len(".yaml")] if bare.endswith(".yaml") else bare
    names = zoo_names()
    if bare in names:
        return zoo_directory() / f"{bare}.yaml"  # type: ignore[operator]
    from difflib import get_close_matches
    close = get_close_matches(bare, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; the zoo has: {', '.join(names)}" if names else ""
    raise ConvcalcError(f"no spec file '{name}' and no zoo model '{bare}'{hint} (convcalc zoo lists them)")


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


def spec_location(path: str | os.PathLike) -> Path:
    """The file a spec argument means: ``zoo:NAME`` the zoo's; a path that exists, that path; a name of the zoo
    (``resnet50``, ``tfslim/vgg_16``), the zoo's spec; any other ``*.yaml`` path itself (its error says "no such
    file"); any other name, an error naming the closest zoo models."""
    text = os.fspath(path)
    if isinstance(text, bytes) or "\0" in text or len(text) > 255:
        return Path(path)                      # the file reader says what is wrong with it
    if text.startswith(PREFIX):
        return zoo_path(text)
    candidate = Path(text)
    if candidate.exists():
        return candidate
    bare = text[:-len(".yaml")] if text.endswith(".yaml") else text
    if bare in zoo_names():
        return zoo_path(bare)
    if candidate.suffix in (".yaml", ".yml") or os.sep in text or (os.altsep and os.altsep in text):
        return candidate
    return zoo_path(text)
