"""How an exact receptive-field number is written, in every format (one vocabulary; README "Conventions").

* text (tables, CSV, lint messages, ``--explain``, verification details): `fraction_text`, the exact value as an
  integer or a reduced fraction: ``3``, ``147/2``, ``-1/2``; never a rounded decimal (``73.5``);
* JSON: `json_number`, an integer as a JSON integer and any other value as the nearest double (``73.5``); where
  the exact value matters a JSON field may carry `fraction_text` beside it (``stride_text``);
* shares of the input (coverage): `percent_text`, one decimal and a space before the sign (``44.4 %``).
"""

from __future__ import annotations

from fractions import Fraction


def fraction_text(value: Fraction | int) -> str:
    """An exact value as text: ``3`` for an integer, else the reduced fraction ``147/2`` (``-1/2``)."""
    if type(value) is Fraction:         # the usual case first (a 10,000-layer table writes 60,000 of them)
        return str(value._numerator) if value._denominator == 1 else f"{value._numerator}/{value._denominator}"
    if isinstance(value, bool):
        raise TypeError("a receptive-field number, not a bool")
    if isinstance(value, float):
        value = Fraction(value)        # only exact binary fractions reach here (a float is never a field's number)
    if isinstance(value, Fraction):
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    return str(value)


def json_number(value: Fraction | int) -> int | float:
    """An exact integer stays an int; any other value becomes the nearest double."""
    if type(value) is int:
        return value
    if type(value) is Fraction:
        return value._numerator if value._denominator == 1 else float(value)
    if not isinstance(value, Fraction):
        value = Fraction(value)
    return value.numerator if value.denominator == 1 else float(value)


def percent_text(share: Fraction | float) -> str:
    """A share of the input (0..1) as ``44.4 %`` (one decimal; ``<0.1 %`` for a tiny non-zero share)."""
    share = float(share)
    if share == 0:
        return "0 %"
    if share < 0.001:
        return "<0.1 %"
    return f"{100 * share:.1f} %"


__all__ = ["fraction_text", "json_number", "percent_text"]
