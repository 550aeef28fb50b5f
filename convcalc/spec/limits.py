"""The spec stage's budgets: every size and count a spec can make convcalc spend time or memory on is bounded here,
and checked before the work it bounds.

Each budget is a module attribute read when it is checked, so a library user (or a test) can change one for a
process: ``convcalc.spec.limits.MAX_SPEC_BYTES = 50 * 2**20``. A spec past a budget is refused with a one-line
`SpecError`/`GraphError` naming the budget and, where there is one, the place in the file.
"""

from __future__ import annotations

# ------------------------------------------------------------------ files
MAX_SPEC_BYTES = 10 * 2 ** 20      # a spec file (or an included one, or standard input), checked before reading
MAX_CONFIG_BYTES = 1 * 2 ** 20     # a lint configuration file (pyproject.toml, .convcalc.yaml)
MAX_INCLUDES = 1_000               # files one spec includes, directly or not (a chain nests at most MAX_NESTING deep)

# ------------------------------------------------------------------ YAML
MAX_YAML_DEPTH = 250               # nested mappings and lists, counted while parsing
MAX_YAML_NODES = 1_000_000         # values in the document once every alias (*name) is expanded

# ------------------------------------------------------------------ expansion
MAX_REPEAT = 10_000                # one 'repeat'
MAX_LAYERS = 100_000               # layer entries after expansion (blocks, repeats, bypassed entries included)
MAX_NESTING = 100                  # blocks and Sequentials inside one another
MAX_SUBSTITUTED = 10_000_000       # values walked to substitute $references, over all the copies blocks make

# ------------------------------------------------------------------ ${...} expressions
MAX_EXPRESSION_CHARS = 1_000       # the text of one expression
MAX_EXPRESSION_DEPTH = 100         # operators and brackets inside one another
MAX_EXPRESSION_STEPS = 10_000      # operations evaluated for one expression
MAX_VALUE_SIZE = 10_000            # items of a list (nested lists count their items) and characters of a string
MAX_INTEGER = 2 ** 63 - 1          # PyTorch's sizes are int64


def plural(count: int, word: str) -> str:
    """'1 layer', '2 layers' (with thousands separators)."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"
