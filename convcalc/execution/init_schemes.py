"""Initialisation schemes: torch.nn.init's distributions, drawn from the executor's seeded NumPy generator.

A scheme is written in a spec's ``init:`` (for one parameter, or for a whole layer) or given to ``convcalc run
--init`` as the default of every layer: a name (``kaiming_normal``) or a mapping with ``scheme`` and the function's
arguments (``{scheme: kaiming_normal, mode: fan_out, nonlinearity: relu}``). The distributions are torch's exactly
(its bounds and standard deviations, its fans computed from the tensor's shape: ``fan_in = size(1)·∏size(2:)``,
``fan_out = size(0)·∏size(2:)``, so a grouped conv's fan_in is ``C/g·∏k`` and a transposed conv's is
``C_out/g·∏k``, as torch computes them); the random numbers are NumPy's, so the same ``--seed`` gives the same
weights here, not torch's.

Owns ``Scheme`` (``draw(shape, rng)``, ``bound``/``std``), ``parse_scheme``, ``scheme_from_text``,
``calculate_gain``, ``fans``, ``applies`` (which parameters a layer-wide scheme sets) and ``SCHEME_NAMES``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import ConvcalcError

_LINEAR = ("linear", "identity", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")
NONLINEARITIES = (*_LINEAR, "tanh", "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """torch.nn.init.calculate_gain: 1 (linear, conv, sigmoid), 5/3 (tanh), √2 (relu), √(2/(1 + slope²))
    (leaky_relu, slope ``param``, default 0.01), 3/4 (selu)."""
    if nonlinearity in _LINEAR:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity '{nonlinearity}'; valid: {', '.join(NONLINEARITIES)}")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """torch.nn.init._calculate_fan_in_and_fan_out: (size(1)·∏size(2:), size(0)·∏size(2:)); 2 dimensions or more."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out cannot be computed for a tensor of fewer than 2 dimensions"
                         f" (shape {list(shape)})")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


# --------------------------------------------------------------------------- the schemes

def _gain(value: Any) -> float:
    """A gain: a number, or a nonlinearity's name (its calculate_gain)."""
    return calculate_gain(value) if isinstance(value, str) else float(value)


def _fan(shape: tuple[int, ...], mode: str) -> int:
    fan_in, fan_out = fans(shape)
    return fan_in if mode == "fan_in" else fan_out


def _xavier_std(shape: tuple[int, ...], args: Mapping[str, Any]) -> float:
    fan_in, fan_out = fans(shape)
    return _gain(args["gain"]) * math.sqrt(2.0 / float(fan_in + fan_out))


def _kaiming_std(shape: tuple[int, ...], args: Mapping[str, Any]) -> float:
    return calculate_gain(args["nonlinearity"], args["a"]) / math.sqrt(_fan(shape, args["mode"]))


def _orthogonal(shape: tuple[int, ...], args: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    """torch.nn.init.orthogonal_: QR of a (rows, ∏rest) standard normal matrix (transposed when wider than tall),
    Q's columns signed by R's diagonal, times gain."""
    rows = shape[0]
    cols = math.prod(shape) // rows
    flattened = rng.standard_normal((rows, cols))
    if rows < cols:
        flattened = flattened.T
    q, r = np.linalg.qr(flattened)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (q * _gain(args["gain"])).reshape(shape)


def _trunc_normal(shape: tuple[int, ...], args: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    """torch.nn.init.trunc_normal_: N(mean, std²) restricted to [a, b]. As torch: where [a, b] holds more than 30 % of
    the normal, normal draws outside it are redrawn; else uniform draws on [a, b] are accepted with probability
    pdf(x)/pdf(mode) (rejection sampling), both exact."""
    mean, std, low, high = (float(args[k]) for k in ("mean", "std", "a", "b"))
    if low > high or std <= 0:
        raise ValueError(f"trunc_normal needs std > 0 and a <= b, got std {std}, a {low}, b {high}")
    mass = 0.5 * (math.erf((high - mean) / (std * math.sqrt(2))) - math.erf((low - mean) / (std * math.sqrt(2))))
    if mass > 0.3:
        draw = lambda count: rng.normal(mean, std, size=count)                          # noqa: E731
        rejected = lambda values: (values < low) | (values > high)                      # noqa: E731
    else:
        mode = max(low, min(mean, high))
        log_peak = -0.5 * ((mode - mean) / std) ** 2
        draw = lambda count: rng.uniform(low, high, size=count)                         # noqa: E731
        rejected = lambda values: np.log(rng.uniform(size=values.shape)) > (             # noqa: E731
            -0.5 * ((values - mean) / std) ** 2 - log_peak)
    values = draw(shape)
    pending = rejected(values)
    while pending.any():
        values[pending] = draw(int(pending.sum()))
        pending[pending] = rejected(values[pending])
    return values


@dataclass(frozen=True)
class _Kind:
    """One torch.nn.init function: its arguments and defaults, and how it draws."""

    defaults: Mapping[str, Any]
    draw: Callable[[tuple[int, ...], Mapping[str, Any], np.random.Generator], np.ndarray]
    needs_fans: bool = False
    required: tuple[str, ...] = ()


_KINDS: dict[str, _Kind] = {
    "xavier_uniform": _Kind({"gain": 1.0}, lambda s, a, rng: rng.uniform(
        -math.sqrt(3.0) * _xavier_std(s, a), math.sqrt(3.0) * _xavier_std(s, a), size=s), True),
    "xavier_normal": _Kind({"gain": 1.0}, lambda s, a, rng: rng.normal(0.0, _xavier_std(s, a), size=s), True),
    "kaiming_uniform": _Kind({"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"}, lambda s, a, rng: rng.uniform(
        -math.sqrt(3.0) * _kaiming_std(s, a), math.sqrt(3.0) * _kaiming_std(s, a), size=s), True),
    "kaiming_normal": _Kind({"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"},
                            lambda s, a, rng: rng.normal(0.0, _kaiming_std(s, a), size=s), True),
    "orthogonal": _Kind({"gain": 1.0}, _orthogonal, True),
    "constant": _Kind({"val": None}, lambda s, a, rng: np.full(s, float(a["val"])), required=("val",)),
    "zeros": _Kind({}, lambda s, a, rng: np.zeros(s)),
    "ones": _Kind({}, lambda s, a, rng: np.ones(s)),
    "uniform": _Kind({"a": 0.0, "b": 1.0}, lambda s, a, rng: rng.uniform(float(a["a"]), float(a["b"]), size=s)),
    "normal": _Kind({"mean": 0.0, "std": 1.0}, lambda s, a, rng: rng.normal(float(a["mean"]), float(a["std"]), size=s)),
    "trunc_normal": _Kind({"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0}, _trunc_normal),
}
ALIASES = {"glorot_uniform": "xavier_uniform", "glorot_normal": "xavier_normal", "he_uniform": "kaiming_uniform",
           "he_normal": "kaiming_normal"}
SCHEME_NAMES = (*_KINDS, *ALIASES)


@dataclass(frozen=True)
class Scheme:
    """A torch.nn.init function with its arguments (defaults filled in)."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def needs_fans(self) -> bool:
        return _KINDS[self.name].needs_fans

    def std(self, shape: tuple[int, ...]) -> float:
        """The standard deviation torch's formula gives for a tensor of ``shape`` (xavier and kaiming)."""
        if self.name.startswith("xavier"):
            return _xavier_std(tuple(shape), self.args)
        if self.name.startswith("kaiming"):
            return _kaiming_std(tuple(shape), self.args)
        raise ValueError(f"{self.name} has no fan-based standard deviation")

    def bound(self, shape: tuple[int, ...]) -> float:
        """The uniform schemes' bound: √3·std."""
        return math.sqrt(3.0) * self.std(shape)

    def draw(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Values of ``shape`` (float64) from this scheme's distribution, drawn from ``rng``."""
        shape = tuple(shape)
        if self.needs_fans and len(shape) < 2:
            raise ValueError(f"{self.name} needs a parameter of 2 dimensions or more (torch computes its fans from"
                             f" the shape), got {list(shape)}")
        return np.asarray(_KINDS[self.name].draw(shape, self.args, rng), dtype=np.float64)

    def describe(self) -> str:
        given = ", ".join(f"{k}={v}" for k, v in self.args.items())
        return f"{self.name}({given})"


def _check_argument(name: str, key: str, value: Any) -> Any:
    if key == "mode":
        if not isinstance(value, str) or value.lower() not in ("fan_in", "fan_out"):
            raise ValueError(f"{name}: mode must be 'fan_in' or 'fan_out', got {value!r}")
        return value.lower()
    if key == "nonlinearity" or (key == "gain" and isinstance(value, str)):
        if value not in NONLINEARITIES:
            raise ValueError(f"{name}: {key} {value!r} is not a nonlinearity torch's calculate_gain knows;"
                             f" valid: {', '.join(NONLINEARITIES)}")
        return value
    if isinstance(value, str):
        try:
            value = float(value)      # YAML 1.1 loads 1e-6 as text
        except ValueError:
            raise ValueError(f"{name}: {key} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}: {key} must be a finite number, got {value!r}")
    return float(value)


def is_scheme(spec: Any) -> bool:
    """Whether an ``init:`` value names a scheme (a scheme's name, or a mapping with 'scheme')."""
    return (isinstance(spec, str) and spec in SCHEME_NAMES) or (isinstance(spec, dict) and "scheme" in spec)


def parse_scheme(spec: Any) -> Scheme:
    """A scheme from its name or a mapping ``{scheme: NAME, argument: value, ...}``; ValueError says what is wrong."""
    given: dict[str, Any] = {}
    if isinstance(spec, dict):
        given = {str(k): v for k, v in spec.items() if k != "scheme"}
        spec = spec.get("scheme")
    if not isinstance(spec, str) or spec not in SCHEME_NAMES:
        raise ValueError(f"unknown initialisation scheme {spec!r}; valid: {', '.join(SCHEME_NAMES)}")
    name = ALIASES.get(spec, spec)
    kind = _KINDS[name]
    unknown = [key for key in given if key not in kind.defaults]
    if unknown:
        takes = ", ".join(kind.defaults) or "no arguments"
        raise ValueError(f"{spec} takes {takes}; got '{unknown[0]}'")
    missing = [key for key in kind.required if key not in given]
    if missing:
        raise ValueError(f"{spec} needs '{missing[0]}'")
    args = {key: _check_argument(spec, key, given.get(key, default)) for key, default in kind.defaults.items()}
    return Scheme(name, args)


def scheme_from_text(text: str) -> Scheme:
    """``convcalc run --init``'s value: a scheme's name or a YAML/JSON mapping such as
    ``{scheme: kaiming_normal, mode: fan_out, nonlinearity: relu}``."""
    import yaml
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConvcalcError(f"--init: cannot read {text!r}; give a scheme's name or a mapping such as"
                            " '{scheme: kaiming_normal, mode: fan_out}'") from None
    try:
        return parse_scheme(value)
    except ValueError as exc:
        raise ConvcalcError(f"--init: {exc}") from None


def applies(name: str, shape: tuple[int, ...]) -> bool:
    """The parameters a layer-wide scheme (``init: SCHEME``, ``--init``) sets: those of 2 dimensions or more that
    are not biases (torch's ``if p.dim() > 1`` idiom); 1-D ones (biases, norms' weights, PReLU's slopes) keep
    their defaults."""
    return len(shape) >= 2 and name.rsplit(".", 1)[-1] != "bias"


__all__ = ["ALIASES", "NONLINEARITIES", "SCHEME_NAMES", "Scheme", "applies", "calculate_gain", "fans", "is_scheme",
           "parse_scheme", "scheme_from_text"]
