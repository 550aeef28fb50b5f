"""Option values converted without Pydantic where the answer is certain: start-up time, not behaviour.

Typer (0.22 on) converts every option's value with a Pydantic ``TypeAdapter``: importing Pydantic and building the
adapters was ~60 ms of the ~250 ms that ``convcalc analyze resnet50`` took, for values that are already what the
command wants (a string, a path, a choice, a small integer, nothing). `QuickParam` answers those itself, with
Typer's own helpers for choices and paths, and hands everything else, and every value it would refuse, to the
converter Typer would have used, built on first need: results and error messages stay Typer's
(tests/test_startup.py checks both against Typer's converter, parameter by parameter). Where Typer has no such
converter (older versions convert with click's types), `install` leaves the parameters alone.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

_SMALL_INT = re.compile(r"0|-?[1-9][0-9]{0,17}")
_NOT_QUICK = object()


class QuickParam:
    """A parameter's converter (Typer's ``RuntimeParam``) that needs no Pydantic for the common values."""

    def __init__(self, descriptor) -> None:
        self._descriptor = descriptor
        self._full = None

    def full(self):
        """Typer's own converter for the parameter (imports Pydantic)."""
        if self._full is None:
            from typer._coercion import build_runtime_param

            self._full = build_runtime_param(self._descriptor)
        return self._full

    def coerce(self, value: Any, param, ctx) -> Any:
        many = param.multiple or param.nargs == -1
        if value is None:                       # as Typer's RuntimeParam.coerce: nothing given, nothing to convert
            return () if many else None
        if not (many and isinstance(value, str)):
            try:
                quick = _convert(self._descriptor, value, param, ctx)
            except Exception:                   # noqa: BLE001 - Typer's converter says what is wrong
                quick = _NOT_QUICK
            if quick is not _NOT_QUICK:
                return quick
        return self.full().coerce(value, param=param, ctx=ctx)

    def __getattr__(self, name: str):
        return getattr(self.full(), name)


def _convert(descriptor, value: Any, param, ctx) -> Any:
    """``value`` as Typer's converter would return it, or `_NOT_QUICK` when that is not certain."""
    info = descriptor.parameter_info
    annotation = descriptor.annotation
    if info.parser is not None or descriptor.file_annotation is not None:
        return _NOT_QUICK
    if get_origin(annotation) is list:
        (item_type,) = get_args(annotation) or (Any,)
        if item_type is not str or not isinstance(value, (list, tuple)):
            return _NOT_QUICK
        return list(value) if all(type(item) is str for item in value) else _NOT_QUICK
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        from typer._param_types import coerce_cli_choice

        return coerce_cli_choice(value, choices=tuple(annotation), case_sensitive=info.case_sensitive, ctx=ctx)
    if annotation is str:
        return value if type(value) is str else _NOT_QUICK
    if annotation is int:
        if info.clamp:
            return _NOT_QUICK
        if type(value) is str and _SMALL_INT.fullmatch(value):
            number = int(value)
        elif type(value) is int:
            number = value
        else:
            return _NOT_QUICK
        if (info.min is not None and number < info.min) or (info.max is not None and number > info.max):
            return _NOT_QUICK                   # Typer's message says which bound
        return number
    if annotation is Path and info.path_type is None:
        if type(value) is not str or not value or "\0" in value:
            return _NOT_QUICK
        from typer._param_types import coerce_cli_path

        return coerce_cli_path(Path(value), info, path_type=Path, param=param, ctx=ctx)
    return _NOT_QUICK


def install(command) -> None:
    """Give ``command``'s parameters, and its help option when it is made, a `QuickParam` (those Typer would
    convert with Pydantic and has not yet)."""
    for param in command.params:
        _quicken(param)
    made = command.get_help_option
    if getattr(made, "quick", False):
        return

    def get_help_option(ctx):
        option = made(ctx)
        if option is not None:
            _quicken(option)
        return option

    get_help_option.quick = True
    command.get_help_option = get_help_option


def _quicken(param) -> None:
    if getattr(param, "_runtime_param", False) is None and hasattr(param, "type_descriptor"):
        param._runtime_param = QuickParam(param.type_descriptor)


__all__ = ["QuickParam", "install"]
