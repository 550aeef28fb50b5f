"""The catalog of lint rules: stable IDs, names, default severities, and what ``--explain`` prints.

IDs: CC1xx errors (the spec is wrong or breaks its own promises), CC2xx warnings (it works, but probably not as
intended), CC3xx information (true and worth knowing; rarely a bug). The logic of each rule is in `checks`.
"""

from __future__ import annotations

from ..errors import ConvcalcError, did_you_mean
from .model import Rule, Severity

RULES: tuple[Rule, ...] = (
    Rule("CC101", "invalid-spec", Severity.error,
         "the spec cannot be read or expanded (YAML, keys, arguments, names, references)",
         "Everything `convcalc analyze` rejects before it sees a shape: invalid YAML, unknown keys or arguments, wrong"
         " value types, duplicate or unknown layer names, include problems. PyTorch would refuse to build the same"
         " module, or the spec does not say what it means.",
         "Read the message: it names the key or argument and, for unknown names, suggests the nearest valid one."),
    Rule("CC102", "shape-error", Severity.error,
         "a layer cannot accept the shape it is given (PyTorch would raise)",
         "The analyzer follows PyTorch's shape rules exactly; a layer whose kernel is wider than its padded input, whose"
         " channels do not divide by its groups, or whose merge inputs disagree would raise at the first forward.",
         "Fix the arguments the message names (kernel_size, padding, groups, in_channels, ...) or the input shape."),
    Rule("CC103", "expectation-failed", Severity.error,
         "the spec's `expect:` (output_shape, params, params_max, macs, macs_max, gmacs, rf_min, rf_at)"
         " does not hold",
         "`expect:` states what the author promises about the network: its output shape, parameter and MAC budget, the"
         " smallest receptive field at the output. A change that breaks a promise should fail CI, not slip through.",
         "Change the network, or update `expect:` if the new numbers are intended."),
    Rule("CC201", "dropped-pixels", Severity.warning,
         "the last rows/columns of a layer's input never reach its output",
         "A sliding window with stride s covers the padded input only up to the last full window: when"
         " (i + pad_lo + pad_hi - k_eff) mod s exceeds the padding after the input, the last input positions are read"
         " by no window. Information at that border is silently lost (and an image's content shifts when it is"
         " resized). Layers whose window is narrower than the stride (a 1x1 stride-2 shortcut) subsample by design"
         " and are not reported.",
         "Choose an input size with (i + pads - k_eff) divisible by the stride, pad one more at the end, or use"
         " ceil_mode (pooling) or 'tf_same' padding."),
    Rule("CC202", "checkerboard", Severity.warning,
         "a transposed convolution or unpooling whose kernel is not divisible by its stride",
         "Each input unit is scattered through the kernel every `stride` output positions; when the kernel is not a"
         " multiple of the stride, output positions receive different numbers of taps depending on their position"
         " modulo the stride, which shows as checkerboard artifacts (Odena, Dumoulin & Olah, Distill 2016). Positions"
         " that receive no tap at all (kernel < stride) get the bias only.",
         "Use a kernel divisible by the stride (4 with stride 2), or resize (Upsample nearest/bilinear) and then"
         " convolve."),
    Rule("CC203", "gridding-common-factor", Severity.warning,
         "stacked dilated convolutions whose dilation rates share a common factor",
         "In a stack of stride-1 windows at one resolution (joined by pointwise layers), when every rate shares a factor"
         " f > 1, a unit only ever sees input positions that are f apart: a grid, and the positions in between never"
         " reach it (the gridding problem; Wang et al. 2018, 'Understanding Convolution for Semantic Segmentation',"
         " hybrid dilated convolution).",
         "Choose rates without a common factor within the stack, e.g. 1, 2, 5 (or 1, 2, 3) instead of 2, 4, 8. One"
         " finding per stack: when the stack also fails CC204 or CC205, this finding names those aspects after its"
         " own (a stack is reported under the most specific rule enabled: CC203, then CC204, then CC205)."),
    Rule("CC204", "gridding-hdc", Severity.warning,
         "stacked dilated convolutions that fail the hybrid-dilated-convolution condition M_2 <= K",
         "Wang et al. 2018: for rates r_1..r_n and kernel K, with M_n = r_n and M_i = max(M_{i+1} - 2 r_i,"
         " M_{i+1} - 2 (M_{i+1} - r_i), r_i), the largest gap the last n-1 layers leave is M_2; the first layer can"
         " fill it only if M_2 <= K. Otherwise some positions inside the field are never seen.",
         "Lower the later rates or raise the early ones (a sawtooth such as 1, 2, 5 repeated), as in Wang et al."
         " A stack whose rates share a factor is reported as CC203, naming this aspect."),
    Rule("CC205", "gridding-holes", Severity.warning,
         "a unit of a dilated stack does not see every input position inside its receptive field",
         "The exact check behind CC203/CC204: the set of input offsets a unit reaches through the stack is the"
         " Minkowski sum of each layer's tap offsets {0, d, ..., (k-1) d} (times the effective stride, 1 in a stride-1"
         " stack). Every offset missing between the first and the last is a hole: input the unit cannot see although"
         " its receptive field spans it.",
         "Change the rates (or add a non-dilated layer first) until the offset set has no holes. A stack that also"
         " fails CC203 or CC204 is reported once, under that rule, naming the holes."),
    Rule("CC206", "misaligned-merge", Severity.warning,
         "a merge (Add, Multiply, Concat) joins paths with different effective strides or centres",
         "Units at the same index of the merged tensors then look at different places of the input: the sum or"
         " concatenation mixes features that are not spatially aligned (a half-pixel shift from an even kernel or"
         " asymmetric padding on one path, or paths that were resampled differently). Only the merge whose own"
         " inputs differ is flagged (as the analyze table's ⚠ and the JSON's misaligned); a later merge whose"
         " shift comes from an earlier misaligned one says so. A strided window (kernel k, padding p) centres its"
         " units (k-1)/2 - p steps of its input after u*stride; a transposed conv (kernel k >= stride, padding p)"
         " centres its units p - (k-1)/2 steps of its output from what they read. A 2x2 stride-2 max pool shifts"
         " by +1/2, so the textbook U-Net decoder, a stride-2 transposed conv with kernel 2 padding 0 or kernel 4"
         " padding 1 (-1/2), lines up with its skip; after a centred stride-2 conv (kernel 3 padding 1: 0) only an"
         " odd kernel does (kernel 3 padding 1 output_padding 1), which overlaps unevenly (CC202).",
         "The finding gives the settings that line the paths up: for a decoder, the transposed-conv kernels and"
         " paddings of its stride that centre like the skip (those without uneven overlap first); for strided"
         " windows, equal (k-1)/2 - padding. Or resample one path explicitly so that the centres match."),
    Rule("CC207", "dead-layer", Severity.warning,
         "layers whose output never reaches the spec's output",
         "A branch that nothing downstream of the output uses costs parameters and compute in the analyzer's totals"
         " but contributes nothing (a forgotten 'from', or an 'output' that points at the wrong layer).",
         "Connect the branch (name it in a 'from' of a merge), point 'output' at the right layer, or delete it."),
    Rule("CC208", "shadowed-reference", Severity.warning,
         "a reference inside a block resolves to the block's own layer although a top-level layer has that name",
         "Inside a block, `from:` and `output:` look up the block's own layers first (then names relative to the block,"
         " then top-level ones), as a nested scope does. When a top-level layer has the same name, the reference"
         " silently means the local one: a block that was meant to read the stem's 'conv1' reads its own 'conv1'.",
         "Rename one of the two layers, or refer to the top-level layer by a name that cannot be taken locally."),
    Rule("CC209", "shadowed-arg", Severity.warning,
         "a block's own default is used where a top-level arg of the same name has another value",
         "Top-level `args` are visible inside every block, but a block's own argument of the same name shadows them:"
         " where the block is used without that argument, its default applies and the top-level value is silently"
         " ignored (a ResNeXt spec with top-level `groups: 32` whose Bottleneck declares `groups: 1` analyses as a"
         " ResNet). The precedence is: the argument given where the block is used, then the block's default, then"
         " the top-level arg.",
         "Pass the top-level value where the block is used (`groups: $groups`), make it the block's default"
         " (`args: {groups: $groups}`: a default may use top-level args), or rename one of the two."),
    Rule("CC301", "rf-coverage", Severity.info,
         "the receptive field at the output covers less of the input's area than rf-min-coverage",
         "A unit of the output (or of the feature map that the classifier's global pooling / Flatten / Linear"
         " gathers) sees only part of the input: context wider than the receptive field cannot influence a single"
         " unit. Classifiers that pool globally often accept this; dense predictors usually do not. Coverage is"
         " the share of the input's area the largest region spans, the product over the axes of min(r, I)/I (the"
         " 'covers' of convcalc rf). Squeeze-and-excitation gates (a global pool multiplied back into the map) are"
         " not the classifier's pool and are left out. The threshold is the lint setting rf-min-coverage"
         " (default 1.0: the whole input).",
         "Add depth, stride or dilation, or declare the minimum you need with `expect: {rf_min: N}`."),
    Rule("CC302", "noop-layer", Severity.info,
         "a layer that returns its input unchanged",
         "A 1-wide pooling window with stride 1, padding of 0, Dropout with p = 0, resampling to the same size:"
         " the layer costs a node and a copy and does nothing, which is often a leftover. An Identity placeholder"
         " is reported only when it chains with another no-op.",
         "Remove the layer, or give it the arguments you meant (a kernel, a padding, a rate)."),
    Rule("CC303", "asymmetric-padding", Severity.info,
         "a padding word ('same', 'tf_same') that pads unequally before and after",
         "With an even kernel (or TensorFlow's SAME with a stride) the total padding is odd, and the extra pixel goes"
         " after the input: the output is shifted by half a pixel against the input, and paths with different"
         " kernels no longer line up.",
         "Use odd kernels with 'same', or pad explicitly where the shift matters."),
)

RULES_BY_ID = {rule.id: rule for rule in RULES}
RULES_BY_NAME = {rule.name: rule for rule in RULES}


def find_rule(word: str) -> Rule | None:
    """A rule by its ID (``CC201``, case-insensitive) or its name (``dropped-pixels``)."""
    return RULES_BY_ID.get(word.strip().upper()) or RULES_BY_NAME.get(word.strip().lower())


def rule_named(word: str) -> Rule:
    """`find_rule`, or an error naming the nearest rule IDs and names."""
    rule = find_rule(word)
    if rule is None:
        raise ConvcalcError(f"unknown lint rule '{word}'; "
                            + did_you_mean(word, [r.id for r in RULES] + [r.name for r in RULES]))
    return rule


def matching_rules(word: str) -> list[Rule]:
    """Rules a selector names: an ID, a name, an ID prefix (``CC2`` = every warning rule) or ``all``."""
    word = word.strip()
    if word.lower() == "all":
        return list(RULES)
    rule = find_rule(word)
    if rule is not None:
        return [rule]
    return [r for r in RULES if len(word) >= 2 and r.id.startswith(word.upper())]
