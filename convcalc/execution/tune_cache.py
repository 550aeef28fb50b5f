"""Where the tuner (`convcalc.execution.tune`) keeps what it measured: one versioned JSON file per user.

``$XDG_CACHE_HOME/convcalc/tuning.json`` (``~/.cache/convcalc/tuning.json`` when XDG_CACHE_HOME is unset, empty or
relative, as the XDG base-directory spec says). Every entry is keyed by the machine (`machine`: the CPU model, its
flags, NumPy's BLAS build and its thread count), so one file serves every CPU a home directory is shared by, and an
entry measured on one CPU is never read on another. Writes are atomic (a temporary file beside it, then
``os.replace``) and merge with what another process wrote meanwhile. A file that cannot be read, is not this
version's JSON or is malformed is ignored with a warning (`TuneCache.warnings`) and rewritten on the next save:
never an error, since the cost model can always choose. Deleting the file (or the folder) clears the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any, Mapping

from ..kernels import blas

SCHEMA_VERSION = 1
FILE_NAME = "tuning.json"


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/convcalc``, or ``~/.cache/convcalc`` when the variable is unset, empty or relative."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME", "")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "convcalc"


def cache_path(environ: Mapping[str, str] | None = None) -> Path:
    return cache_dir(environ) / FILE_NAME


def cpu_model() -> str:
    """The CPU as Linux names it (model name, family/model/stepping, and a digest of its flags: a virtual machine
    may call every Xeon 'Intel Xeon Processor'); elsewhere Python's platform strings."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            first = info.read().split("\n\n", 1)[0]
    except OSError:
        first = ""
    fields = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in first.splitlines())}
    name = fields.get("model name") or fields.get("Hardware") or platform.processor() or platform.machine() or "?"
    numbers = "/".join(fields.get(key, "?") for key in ("cpu family", "model", "stepping", "CPU part"))
    flags = fields.get("flags") or fields.get("Features") or ""
    digest = hashlib.sha1(" ".join(sorted(flags.split())).encode()).hexdigest()[:10]
    return f"{name} [{platform.machine()} {numbers} flags {digest}]"


def machine() -> str:
    """The part of every key that names the machine: CPU, BLAS build and the threads it runs."""
    return f"{cpu_model()} | {blas.build()} | {blas.threads()} threads"


def entry_key(*parts: Any) -> str:
    """A JSON text of the parts: the key of one entry (stable: sorted keys, no spaces)."""
    return json.dumps(parts, sort_keys=True, separators=(",", ":"))


class TuneCache:
    """The cache file's entries, by key (`entry_key`); `warnings` says why a file was ignored or not written."""

    def __init__(self, path: Path | None = None):
        self.path = cache_path() if path is None else Path(path)
        self.warnings: list[str] = []
        self.entries: dict[str, Any] = self._read(warn=True)
        self.added: dict[str, Any] = {}

    def _read(self, warn: bool) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError):     # nothing cached yet (a save says what is wrong)
            return {}
        except UnicodeDecodeError:
            return self._ignored("is not UTF-8 text", warn)
        except OSError as exc:
            return self._ignored(f"cannot be read ({exc.strerror or type(exc).__name__})", warn)
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return self._ignored("is not JSON", warn)
        if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
            return self._ignored("is not a tuning cache", warn)
        if data.get("schema_version") != SCHEMA_VERSION:
            return self._ignored(f"has schema_version {str(data.get('schema_version'))[:20]}, not {SCHEMA_VERSION}",
                                 warn)
        return {key: value for key, value in data["entries"].items() if isinstance(value, dict)}

    def _ignored(self, reason: str, warn: bool) -> dict[str, Any]:
        if warn:
            self.warnings.append(f"warning: the tuning cache {self.path} {reason}: ignored (the cost model chooses;"
                                 " it is rewritten when something is tuned)")
        return {}

    def get(self, key: str) -> dict[str, Any] | None:
        return self.entries.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.entries[key] = self.added[key] = value

    def save(self) -> bool:
        """Write the entries added since loading, merged into what the file holds now (another process may have
        written it), atomically; False, with a warning, when the folder or file cannot be written."""
        if not self.added:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            merged = {**self._read(warn=False), **self.added}
            text = json.dumps({"schema_version": SCHEMA_VERSION, "entries": merged}, indent=1, sort_keys=True)
            handle, temporary = tempfile.mkstemp(prefix=".tuning-", suffix=".json", dir=self.path.parent)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write(text)
                os.replace(temporary, self.path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError as exc:
            self.warnings.append(f"warning: the tuning cache {self.path} cannot be written"
                                 f" ({exc.strerror or type(exc).__name__}): what was measured is used this time only")
            return False
        self.entries = merged
        self.added = {}
        return True


__all__ = ["FILE_NAME", "SCHEMA_VERSION", "TuneCache", "cache_dir", "cache_path", "cpu_model", "entry_key",
           "machine"]
