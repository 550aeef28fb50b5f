"""Lint configuration: ``[tool.convcalc.lint]`` in pyproject.toml, or ``lint:`` in .convcalc.yaml.

Found by walking up from the first linted path (or the working directory): in each directory
``.convcalc.yaml`` first, then a ``pyproject.toml`` that has the section; the first one found wins. Keys
(``-`` or ``_`` alike)::

    [tool.convcalc.lint]
    select = ["CC1", "CC2", "noop-layer"]    # IDs, names, ID prefixes or "all" (default: all)
    ignore = ["CC303"]
    fail-on = "warning"                     # error (default), warning, info
    rf-min-coverage = 0.5                   # CC301 threshold: share of the input's area (default 1.0)

    [tool.convcalc.lint.severity]
    CC201 = "error"
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConvcalcError, did_you_mean
from ..spec import limits
from ..spec.files import read_text_file
from ..spec.marked_yaml import load_marked
from .model import Severity
from .rules import RULES, matching_rules

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_KEYS = ("select", "ignore", "severity", "fail-on", "rf-min-coverage", "exclude")
YAML_NAME = ".convcalc.yaml"
YAML_NAMES = (YAML_NAME, ".convcalc.yml")     # the pre-commit hook excludes both spellings


class LintConfigError(ConvcalcError):
    """The lint configuration (a file or an option) is invalid: a usage error (exit 2)."""


@dataclass(frozen=True)
class LintConfig:
    """What to check and how severely. ``select`` empty means every rule."""

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    severity: Mapping[str, Severity] = field(default_factory=dict)     # rule ID -> severity
    fail_on: Severity = Severity.error
    rf_min_coverage: float = 1.0
    source: str | None = None            # the file it was read from
    allow_include_outside: bool = False  # let specs include files outside their directory tree
    exclude: tuple[str, ...] = ()        # glob patterns of YAML files under the given directories not to check

    def enabled(self) -> set[str]:
        chosen = {r.id for word in self.select for r in rules_for(word)} if self.select else {r.id for r in RULES}
        return chosen - {r.id for word in self.ignore for r in rules_for(word)}

    def severity_of(self, rule: str, default: Severity) -> Severity:
        return self.severity.get(rule, default)

    def with_options(self, select: Sequence[str] | None = None, ignore: Sequence[str] = (),
                     fail_on: str | None = None, allow_include_outside: bool = False,
                     exclude: Sequence[str] = ()) -> "LintConfig":
        """Command-line options over the file's settings: --ignore adds; --select replaces the file's selection,
        its ignore list included (as ruff does), so ``--select CC201`` reports CC201 even where the file ignores it."""
        return replace(self, select=tuple(select) if select else self.select,
                       ignore=(*(() if select else self.ignore), *ignore),
                       fail_on=parse_severity(fail_on, "--fail-on") if fail_on is not None else self.fail_on,
                       allow_include_outside=self.allow_include_outside or allow_include_outside,
                       exclude=(*self.exclude, *exclude))


def rules_for(word: str, source: str | None = None) -> list:
    rules = matching_rules(str(word))
    if not rules:
        known = [r.id for r in RULES] + [r.name for r in RULES]
        where = f"{source}: " if source else ""
        raise LintConfigError(f"{where}unknown lint rule '{word}'; {did_you_mean(str(word), known)}")
    return rules


def parse_severity(value: Any, what: str) -> Severity:
    if isinstance(value, str) and value.lower() in Severity.__members__:
        return Severity[value.lower()]
    raise LintConfigError(f"{what} must be one of error, warning, info; got {value!r}")


def _words(value: Any, what: str) -> tuple[str, ...]:
    values = value if isinstance(value, list) else [value] if isinstance(value, str) else None
    if values is None or not all(isinstance(v, str) for v in values):
        raise LintConfigError(f"{what} must be a rule or a list of rules, got {value!r}")
    for word in values:
        rules_for(word, what)
    return tuple(values)


def _patterns(value: Any, what: str) -> tuple[str, ...]:
    """Glob patterns: one string or a list of strings."""
    values = value if isinstance(value, list) else [value] if isinstance(value, str) else None
    if values is None or not all(isinstance(v, str) and v.strip() for v in values):
        raise LintConfigError(f"{what} must be a glob pattern or a list of them, got {value!r}")
    return tuple(values)


def config_from_mapping(data: Mapping[str, Any], source: str) -> LintConfig:
    """Validate one configuration table (pyproject's [tool.convcalc.lint] or .convcalc.yaml's 'lint:')."""
    if not isinstance(data, Mapping):
        raise LintConfigError(f"{source}: the lint settings must be a table/mapping, got {data!r}")
    settings: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("_", "-")
        if name not in CONFIG_KEYS:
            raise LintConfigError(f"{source}: unknown lint setting '{key}'; {did_you_mean(name, CONFIG_KEYS)}")
        settings[name] = value
    severity: dict[str, Severity] = {}
    table = settings.get("severity", {})
    if not isinstance(table, Mapping):
        raise LintConfigError(f"{source}: severity must map rules to error/warning/info, got {table!r}")
    for word, level in table.items():
        for rule in rules_for(str(word), f"{source}: severity"):
            severity[rule.id] = parse_severity(level, f"{source}: severity of {word}")
    coverage = settings.get("rf-min-coverage", 1.0)
    if isinstance(coverage, bool) or not isinstance(coverage, (int, float)) or not 0 <= coverage <= 1:
        raise LintConfigError(f"{source}: rf-min-coverage must be a number from 0 to 1, got {coverage!r}")
    return LintConfig(
        select=_words(settings["select"], f"{source}: select") if "select" in settings else (),
        ignore=_words(settings["ignore"], f"{source}: ignore") if "ignore" in settings else (),
        severity=severity,
        fail_on=parse_severity(settings.get("fail-on", "error"), f"{source}: fail-on"),
        rf_min_coverage=float(coverage),
        source=source,
        exclude=_patterns(settings["exclude"], f"{source}: exclude") if "exclude" in settings else (),
    )


def _read_table(path: Path) -> Mapping[str, Any] | None:
    """The lint table of a config file, None when the file has none (a pyproject.toml without the section).

    Read as a spec is (`convcalc.spec.files`): a regular file only, at most ``limits.MAX_CONFIG_BYTES``, UTF-8; a
    YAML one within the YAML budgets. Every failure is one `LintConfigError` naming the file."""
    try:
        text = read_text_file(path, what="config file", limit=limits.MAX_CONFIG_BYTES)
    except ConvcalcError as exc:
        raise LintConfigError(str(exc)) from None
    if path.suffix == ".toml":
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise LintConfigError(f"{path}: invalid TOML: {exc}") from None
        except RecursionError:
            raise LintConfigError(f"{path}: invalid TOML: it nests too deeply") from None
        tool = document.get("tool")
        table = tool.get("convcalc") if isinstance(tool, dict) else None
        return table.get("lint") if isinstance(table, dict) else None
    try:
        document = load_marked(text, str(path))
    except ConvcalcError as exc:
        raise LintConfigError(str(exc)) from None
    if document is None:
        return None
    if not isinstance(document, dict):
        raise LintConfigError(f"{path}: expected a mapping with a 'lint:' section")
    if "lint" in document and document["lint"] is None:
        return {}                # 'lint:' with every setting left out (or commented out): the defaults
    return document.get("lint")


def load_config(path: str | Path) -> LintConfig:
    """Read the lint settings of one file (pyproject.toml or a YAML file with a 'lint:' section)."""
    path = Path(path)
    if not path.is_file():
        raise LintConfigError(f"no such config file: {path}")
    table = _read_table(path)
    if table is None:            # asked for by name: settings that are not where they belong are a mistake
        where = "[tool.convcalc.lint]" if path.suffix == ".toml" else "'lint:'"
        raise LintConfigError(f"{path}: no {where} section with lint settings")
    return config_from_mapping(table, str(path))


def find_config(start: str | Path | None = None) -> LintConfig:
    """The settings found walking up from ``start`` (a file or directory; default: the working directory),
    or the defaults when there are none."""
    here = Path(start) if start is not None else Path.cwd()
    here = here.resolve()
    if not here.is_dir():
        here = here.parent
    for directory in (here, *here.parents):
        for candidate in (*(directory / name for name in YAML_NAMES), directory / "pyproject.toml"):
            if candidate.is_file():
                table = _read_table(candidate)
                if table is not None:
                    return config_from_mapping(table, str(candidate))
    return LintConfig()


def settings_for(paths: Sequence[str | Path], *, config: str | Path | None = None, no_config: bool = False,
                 select: Sequence[str] = (), ignore: Sequence[str] = (), fail_on: str | None = None,
                 allow_include_outside: bool = False, exclude: Sequence[str] = ()) -> LintConfig:
    """The settings `convcalc lint PATH...` runs with: none (``no_config``), the file ``config``, or the nearest
    one found walking up from the first path; then the command line's options over them (`LintConfig.with_options`)."""
    if no_config:
        settings = LintConfig()
    elif config is not None:
        settings = load_config(config)
    else:
        settings = find_config(paths[0] if paths else None)
    return settings.with_options(select, ignore, fail_on, allow_include_outside, exclude)
