"""Spec loading and graph expansion: names, blocks, repeats, bypasses, includes, and their exact errors."""

from __future__ import annotations

import textwrap

import pytest

import convcalc
from convcalc.errors import ConvcalcError, GraphError, ShapeError, SpecError
from convcalc.spec.expr import ExprError, evaluate, substitute


def load(text: str, filename: str = "net.yaml", **kwargs):
    return convcalc.parse_spec(textwrap.dedent(text).lstrip("\n"), filename, **kwargs)


def names(text: str) -> list[str]:
    return [node.name for node in convcalc.build_graph(load(text)).nodes]


def error_of(text: str, kind=ConvcalcError, analyze: bool = True) -> str:
    with pytest.raises(kind) as info:
        spec = load(text)
        graph = convcalc.build_graph(spec)
        if analyze:
            convcalc.analyze(graph)
    return str(info.value)


# ----------------------------------------------------------------------------- naming and expansion

def test_generated_names_count_per_type():
    assert names("""
        input: [3, 8, 8]
        layers:
          - {type: Conv2d, out_channels: 4, kernel_size: 3}
          - {type: relu}
          - {type: Conv2d, out_channels: 4, kernel_size: 3}
          - {type: ReLU}
        """) == ["conv2d_1", "relu_1", "conv2d_2", "relu_2"]


def test_sequential_children_are_numbered_by_position_like_torch():
    assert names("""
        input: [3, 8, 8]
        layers:
          - name: features
            type: Sequential
            layers:
              - {type: Conv2d, out_channels: 4, kernel_size: 3}
              - {type: ReLU}
              - {type: Conv2d, out_channels: 4, kernel_size: 3, name: last}
        """) == ["features.0", "features.1", "features.last"]


def test_block_repeat_first_and_when():
    text = """
        input: [4, 16, 16]
        blocks:
          Unit:
            args: {width: required, stride: 1, project: false}
            layers:
              - {name: conv, type: Conv2d, out_channels: $width, kernel_size: 3, stride: $stride, padding: 1}
              - {name: proj, type: Conv2d, from: input, when: $project, out_channels: $width, kernel_size: 1,
                 stride: $stride}
              - {type: Add, from: [conv, proj]}
        layers:
          - {name: stage, type: Unit, repeat: 3, width: 8, first: {stride: 2, project: true}}
        """
    graph = convcalc.build_graph(load(text))
    assert [n.name for n in graph.nodes] == [
        "stage.0.conv", "stage.0.proj", "stage.0.add_1",
        "stage.1.conv", "stage.1.add_1",
        "stage.2.conv", "stage.2.add_1",
    ]
    # the bypassed projection stands for the block's input
    assert graph.node("stage.1.add_1").inputs == ("stage.1.conv", "stage.0.add_1")
    summary = convcalc.analyze(graph)
    assert summary.output_shape == (8, 8, 8)
    # stride 2 only in the first repetition: 16 -> 8, then 8 stays 8
    assert summary.layer("stage.0.conv").output_shape == (8, 8, 8)
    assert summary.layer("stage.2.conv").output_shape == (8, 8, 8)
    # params: first conv 4*8*9+8, projection 4*8+8, later convs 8*8*9+8 (twice)
    assert summary.totals.params == (4 * 8 * 9 + 8) + (4 * 8 + 8) + 2 * (8 * 8 * 9 + 8)
    assert graph.groups["stage"].label == "Unit ×3"
    assert graph.groups["stage.1"].output == "stage.1.add_1"


def test_expressions_index_and_string_interpolation():
    text = """
        input: [2, 10]
        blocks:
          Grow:
            args: {base: 4}
            layers:
              - {name: "c${index}", type: Conv1d, out_channels: "${base * 2 ** index}", kernel_size: 1}
        layers:
          - {name: g, type: Grow, repeat: 3}
        """
    summary = convcalc.analyze(load(text))
    assert [r.name for r in summary.layers] == ["g.0.c0", "g.1.c1", "g.2.c2"]
    assert [r.output_shape[0] for r in summary.layers] == [4, 8, 16]


def test_repeat_on_a_plain_layer_and_referring_to_a_group_means_its_output():
    text = """
        input: [3, 8, 8]
        layers:
          - {name: convs, type: Conv2d, out_channels: 3, kernel_size: 3, padding: 1, repeat: 2}
          - {type: Add, from: [input, convs]}
        """
    graph = convcalc.build_graph(load(text))
    assert [n.name for n in graph.nodes] == ["convs.0", "convs.1", "add_1"]
    assert graph.node("add_1").inputs == ("input", "convs.1")


def test_block_output_and_spec_output():
    text = """
        input: [3, 8, 8]
        blocks:
          Two:
            output: a
            layers:
              - {name: a, type: Conv2d, out_channels: 5, kernel_size: 1}
              - {name: b, type: Conv2d, out_channels: 6, kernel_size: 1}
        output: t
        layers:
          - {name: t, type: Two}
          - {type: Conv2d, out_channels: 7, kernel_size: 1}
        """
    graph = convcalc.build_graph(load(text))
    assert graph.output == "t.a"
    assert graph.node("conv2d_1").inputs == ("t.a",)
    assert convcalc.analyze(graph).output_shape == (5, 8, 8)


def test_top_level_args_and_overrides():
    text = """
        input: [16]
        args: {classes: 10}
        layers:
          - {type: Linear, out_features: $classes}
        """
    spec = load(text)
    assert convcalc.analyze(spec).output_shape == (10,)
    assert convcalc.analyze(convcalc.build_graph(spec, {"classes": 3})).output_shape == (3,)
    with pytest.raises(SpecError, match="no argument 'clases'; did you mean 'classes'"):
        convcalc.build_graph(spec, {"clases": 3})


def test_trainable_false_freezes_a_block():
    text = """
        input: [3, 8, 8]
        blocks:
          B:
            layers: [{type: Conv2d, out_channels: 4, kernel_size: 3}]
        layers:
          - {name: frozen, type: B, trainable: false}
          - {type: Conv2d, out_channels: 2, kernel_size: 1}
        """
    totals = convcalc.analyze(load(text)).totals
    assert totals.params == (3 * 4 * 9 + 4) + (4 * 2 + 2)
    assert totals.trainable_params == 4 * 2 + 2


def test_include_brings_blocks_and_stays_inside_the_tree(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.yaml").write_text(textwrap.dedent("""
        blocks:
          Stem:
            layers: [{type: Conv2d, out_channels: 8, kernel_size: 3, stride: 2}]
        """))
    (tmp_path / "net.yaml").write_text(textwrap.dedent("""
        input: [3, 9, 9]
        include: lib/blocks.yaml
        layers: [{type: Stem, name: stem}]
        """))
    summary = convcalc.analyze(convcalc.load_spec(tmp_path / "net.yaml"))
    assert summary.layer("stem.conv2d_1").output_shape == (8, 4, 4)

    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "net.yaml").write_text("input: [3, 9, 9]\ninclude: ../lib/blocks.yaml\nlayers: [{type: Stem}]\n")
    with pytest.raises(SpecError, match="points outside the spec's directory"):
        convcalc.load_spec(inner / "net.yaml")
    allowed = convcalc.load_spec(inner / "net.yaml", allow_include_outside=True)
    assert convcalc.analyze(allowed).output_shape == (8, 4, 4)


def test_include_cycle_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    (tmp_path / "net.yaml").write_text("input: [1, 4]\ninclude: a.yaml\nlayers: [{type: ReLU}]\n")
    with pytest.raises(SpecError, match=r"b.yaml:1:10: include cycle: net.yaml -> a.yaml -> b.yaml -> a.yaml$"):
        convcalc.load_spec(tmp_path / "net.yaml")


# ----------------------------------------------------------------------------- exact error texts

@pytest.mark.parametrize("text, expected", [
    ("""
     input: [3, 7, 7]
     layers:
       - {type: Conv2d, out_channels: 8, kernel_size: 3}
       - type: Conv2d
         name: c3
         out_channels: 8
         kernel_size: 5
         dilation: 2
     """,
     "net.yaml:7:5: layer 'c3' (Conv2d): kernel_size 5 with dilation 2 spans 9, but the padded input is 5 wide"
     " along the height"),
    ("""
     input: [3, 32, 32]
     layers:
       - {type: Conv2D, out_channel: 8, kernel_size: 3}
     """,
     "net.yaml:3:20: layer 'conv2d_1' (Conv2d): unknown argument 'out_channel' for Conv2d; did you mean"
     " 'out_channels'? valid: algorithm, bias, dilation, flip_kernel, groups, in_channels, kernel_size,"
     " out_channels, padding, padding_mode, stride"),
    ("""
     input: [3, 32, 32]
     layers:
       - {type: Conv2d, out_channels: 8, kernel_size: 3, groups: 3}
     """,
     "net.yaml:3:53: layer 'conv2d_1' (Conv2d): out_channels 8 is not divisible by groups 3"),
    ("""
     input: [3, 32, 32]
     layers:
       - {type: Conv2d, out_channels: 8, kernel_size: 3, stride: 2, padding: same}
     """,
     "net.yaml:3:64: layer 'conv2d_1' (Conv2d): padding='same' is not supported for strided convolutions"
     " (stride [2, 2]); PyTorch allows it with stride 1 only (TensorFlow/Keras SAME, which takes a stride, is"
     " padding: tf_same)"),
    ("""
     input: [3, 32, 32]
     layers:
       - {type: Conv2d, out_channels: 6, kernel_size: 3}
       - {type: Conv2d, out_channels: 4, kernel_size: 3, groups: 4}
     """,
     "net.yaml:4:53: layer 'conv2d_2' (Conv2d): the input's 6 channels are not divisible by groups 4"),
    ("""
     input: [3, 4, 4]
     layers:
       - {type: Conv2d, out_channels: 1, kernel_size: 3, padding: 4, padding_mode: reflect}
     """,
     "net.yaml:3:53: layer 'conv2d_1' (Conv2d): reflect padding 4 along the height must be smaller than the"
     " input size 4"),
    ("""
     input: [3, 32, 32]
     layers:
       - {type: MaxPool2d, kernel_size: 3, padding: 2}
     """,
     "net.yaml:3:39: layer 'maxpool2d_1' (MaxPool2d): padding 2 along the height is more than half the kernel"
     " size 3 (PyTorch allows at most 1)"),
    ("""
     input: [3, 32, 32]
     layers:
       - {type: Convv2d, out_channels: 8, kernel_size: 3}
     """,
     "net.yaml:3:6: unknown layer type 'Convv2d'; did you mean 'Conv2d'?"),
    ("""
     input: [3, 32, 32]
     layers:
       - {type: Conv2d, out_channels: 8, kernel_size: 3, name: a}
       - {type: Add, from: [a, b]}
     """,
     "net.yaml:4:23: 'from' refers to 'b', which is not a layer defined before this one in this spec;"
     " valid: a, input"),
    ("""
     input: [3, 32, 32]
     layers:
       - {type: ReLU, name: a}
       - {type: ReLU, name: a}
     """,
     "net.yaml:4:24: duplicate layer name 'a' (first at line 3)"),
    ("""
     input: [3, 32, 32]
     input: [3, 3, 3]
     layers: [{type: ReLU}]
     """,
     "net.yaml:2:1: duplicate key 'input' (first given at line 1)"),
    ("""
     input: [3, 32, 32]
     layer: [{type: ReLU}]
     """,
     "net.yaml:2:1: unknown key 'layer' in the spec; did you mean 'layers'?"),
    ("""
     input: [3, 0, 32]
     layers: [{type: ReLU}]
     """,
     "net.yaml:1:1: input must be a list of 1 to 4 positive integers, channels first and without the batch"
     " ([C, L], [C, H, W] or [C, D, H, W]), got [3, 0, 32]"),
    ("""
     input: [3, 32, 32]
     layers:
       - {type: Conv2d, out_channels: 8, kernel_size: 3
     """,
     "net.yaml:3:5: invalid YAML: the '{' opened here is never closed: the file ends where a ',' or '}' should be"
     " (a list is written [3, 3], a mapping {type: ReLU})"),
    ("""
     input: [3, 32, 32]
     layers:
       - {type: Linear, out_features: 10, in_features: 3}
     """,
     "net.yaml:3:38: layer 'linear_1' (Linear): in_features is 3 but the input's last axis has 32 features;"
     " input [3, 32, 32] (a Flatten before it?)"),
    ("""
     input: [3, 32, 32]
     layers:
       - {type: Conv2d, out_channels: 8, kernel_size: [3, 3, 3]}
     """,
     "net.yaml:3:37: layer 'conv2d_1' (Conv2d): kernel_size must be an integer or a list of 2 integers"
     " (one per spatial axis), got 3 values"),
    ("""
     input: [3, 32, 32]
     layers:
       - {type: Conv2d, out_channels: 8, kernel_size: 3, bias: 1}
     """,
     "net.yaml:3:53: layer 'conv2d_1' (Conv2d): bias must be true or false, got the number 1"),
    ("""
     input: [3, 32]
     layers:
       - {type: Conv2d, out_channels: 8, kernel_size: 3}
     """,
     "net.yaml:3:5: layer 'conv2d_1' (Conv2d): Conv2d expects a [C, H, W] input, got [3, 32]"),
    ("""
     input: [3, 8, 8]
     layers:
       - {type: Conv2d, out_channels: 4, kernel_size: 1, name: a}
       - {type: Concat, from: [a, input], dim: 2}
     """,
     "net.yaml:4:20: layer 'concat_1' (Concat): Concat along dim 2 needs the other axes equal, got 'a' [4, 8, 8],"
     " 'input' [3, 8, 8]"),
    ("""
     input: [3, 8, 8]
     layers:
       - {type: Add}
     """,
     "net.yaml:3:5: layer 'add_1' (Add): Add takes at least 2 inputs, got 1"),
])
def test_exact_error_messages(text, expected):
    message = error_of(text)
    assert message.startswith(expected), message


def test_block_errors_name_the_use_site():
    text = """
        input: [3, 32, 32]
        blocks:
          B:
            args: {k: 3}
            layers:
              - {type: Conv2d, out_channels: 4, kernel_size: $k}
        layers:
          - {type: B, k: 40, name: blk, repeat: 2}
        """
    assert error_of(text, ShapeError) == (
        "net.yaml:6:41: layer 'blk.0.conv2d_1' (Conv2d): kernel_size 40 spans 40, but the padded input is 32 wide"
        " along the height (in block 'B' used at net.yaml:8:5)")


@pytest.mark.parametrize("use, expected", [
    ("{type: B, name: b}", "net.yaml:8:5: block 'B' needs argument 'w'"),
    ("{type: B, w: 2, wdith: 3}", "net.yaml:8:21: unknown argument 'wdith' for block 'B'; did you mean 'width'?"),
    ("{type: B, w: 2, first: {w: 3}}", "net.yaml:8:21: 'first' needs 'repeat'"),
    ("{type: B, w: 2, repeat: 0}", "net.yaml:8:29: 'repeat' must be an integer from 1 to 10,000, got 0"),
    ("{type: B, w: 2, when: maybe}", "net.yaml:8:27: 'when' must be true or false, got 'maybe'"),
])
def test_block_use_errors(use, expected):
    text = f"""
        input: [3, 8, 8]
        blocks:
          B:
            args: {{w: required, width: 1}}
            layers:
              - {{type: Conv2d, out_channels: $w, kernel_size: 1}}
        layers:
          - {use}
        """
    assert error_of(text, SpecError).startswith(expected)


def test_expression_errors_point_at_the_value():
    text = """
        input: [3, 8, 8]
        blocks:
          B:
            args: {w: 2}
            layers:
              - {type: Conv2d, out_channels: "${w2 * 2}", kernel_size: 1}
        layers:
          - {type: B}
        """
    assert error_of(text, SpecError) == (
        "net.yaml:6:38: in 'out_channels': unknown name 'w2' (known: index, repeat, w)"
        " (in block 'B' used at net.yaml:8:5)")


def test_block_named_like_a_layer_type_is_refused():
    assert error_of("""
        input: [3, 8, 8]
        blocks:
          conv2d: {layers: [{type: ReLU}]}
        layers: [{type: ReLU}]
        """, SpecError) == "net.yaml:3:3: block 'conv2d' has the name of a layer type; choose another name"


def test_reference_to_a_later_layer_is_an_error_so_no_cycles():
    message = error_of("""
        input: [3, 8, 8]
        layers:
          - {type: ReLU, name: a, from: b}
          - {type: ReLU, name: b, from: a}
        """, GraphError)
    assert "'from' refers to 'b', which is not a layer defined before this one" in message


def test_numeric_text_is_accepted_for_real_arguments():
    graph = convcalc.build_graph(load("""
        input: [3, 8, 8]
        layers: [{type: BatchNorm2d, eps: 1e-3}]
        """))
    assert graph.node("batchnorm2d_1").layer.eps == 0.001


# ----------------------------------------------------------------------------- the expression language

def test_expression_arithmetic():
    names_ = {"planes": 64, "index": 0, "flag": True}
    assert evaluate("planes * 4", names_) == 256
    assert evaluate("planes / 2", names_) == 32 and isinstance(evaluate("planes / 2", names_), int)
    assert evaluate("2 if index == 0 else 1", names_) == 2
    assert evaluate("not flag or planes > 10", names_) is True
    assert substitute("layer${index + 1}", names_) == "layer1"
    assert substitute("$planes", names_) == 64
    assert substitute("plain", names_) == "plain"


@pytest.mark.parametrize("source", ["__import__('os')", "planes.bit_length()", "(lambda: 1)()", "[x for x in y]",
                                    "open('f')", "2 ** 1000"])
def test_expressions_cannot_call_or_reach_attributes(source):
    with pytest.raises(ExprError):
        evaluate(source, {"planes": 1})


def test_inline_blocks_continue_the_enclosing_sequential_numbering():
    # torchvision's vgg(batch_norm=...) builds 'features' as one flat nn.Sequential: with batch norm each stage is
    # conv, bn, relu; without it conv, relu. A bypassed layer takes no index, as an absent module takes none.
    text = """
        input: [3, 8, 8]
        args: {bn: false}
        blocks:
          Conv3:
            args: {width: required}
            layers:
              - {type: Conv2d, out_channels: $width, kernel_size: 3, padding: 1}
              - {type: BatchNorm2d, when: $bn}
              - {type: ReLU}
        layers:
          - name: features
            type: Sequential
            layers:
              - {type: Conv3, inline: true, repeat: 2, width: 4}
              - {type: MaxPool2d, kernel_size: 2}
              - {type: ReLU, inline: true, repeat: 2}
        """
    spec = load(text)
    assert [n.name for n in convcalc.build_graph(spec).nodes] == [
        "features.0", "features.1", "features.2", "features.3", "features.4", "features.5", "features.6"]
    with_bn = convcalc.build_graph(spec, {"bn": True})
    assert [n.type_name for n in with_bn.nodes][:6] == ["Conv2d", "BatchNorm2d", "ReLU"] * 2
    assert with_bn.nodes[6].name == "features.6" and with_bn.nodes[6].type_name == "MaxPool2d"
    assert set(with_bn.groups) == {"features"}  # inline adds no level


def test_inline_repeat_refuses_a_fixed_name():
    assert error_of("""
        input: [3, 8, 8]
        layers:
          - {type: ReLU, name: r, inline: true, repeat: 2}
        """, SpecError) == "net.yaml:3:18: an inline repeat names its copies itself; drop 'name'"


# ----------------------------------------------------------------------------- review findings (regressions)

def test_yaml_core_schema_scalars_and_keys():
    message = error_of("""
        input: [3, 8, 8]
        layers:
          - {type: Conv2d, out_channels: 4, kernel_size: 1:20}
        """, SpecError)
    assert message.endswith("kernel_size must be an integer or a list of 2 integers (one per spatial axis), got"
                            " the string '1:20'") or "got the string '1:20'" in message
    message = error_of("""
        input: [3, 8, 8]
        layers:
          - {type: Conv2d, out_channels: 1e1, kernel_size: 1}
        """, SpecError)
    assert "out_channels must be an integer, got the number 10.0" in message
    message = error_of("""
        input: [3, 8, 8]
        layers:
          - {type: ReLU, on: 1}
        """, SpecError)
    assert "unknown argument 'on' for ReLU" in message


def test_merge_keys_may_be_overridden():
    spec = load("""
        input: [3, 8, 8]
        layers:
          - &conv {type: Conv2d, out_channels: 8, kernel_size: 3, name: c1}
          - {<<: *conv, name: c2, out_channels: 16}
        """)
    assert convcalc.analyze(spec).output_shape == (16, 4, 4)


@pytest.mark.parametrize("value, expected", [
    ('"${(10.0**60)**60}"', "in 'out_channels': "),
    ('"${[1] * 10**10}"', "the result would hold 10,000,000,000 items"),
    ('"${10**18 * 10**18}"', "is too large"),
    ("123456789012345678901234567890", "the integer 12345678901234567890... is too large"),
    ("1099511627777", "out_channels 1099511627777 is too large (at most 1,099,511,627,776)"),
])
def test_huge_values_are_clean_errors(value, expected):
    message = error_of(f"""
        input: [3, 8, 8]
        layers:
          - {{type: Conv2d, out_channels: {value}, kernel_size: 1}}
        """, SpecError)
    assert expected in message


def test_control_characters_are_located():
    with pytest.raises(SpecError) as info:
        convcalc.parse_spec("input: [3, 8, 8]\nlayers:\n  - {type: ReLU}\x01\n", "net.yaml")
    assert str(info.value) == "net.yaml:3:17: invalid YAML: the character '\\x01' is not allowed in a YAML file"


def test_defaults_may_use_globals_and_earlier_arguments():
    spec = load("""
        input: [3, 8, 8]
        args: {width: 4, double: "${width * 2}"}
        blocks:
          B:
            args: {c: $width, d: "${c + 1}"}
            layers:
              - {type: Conv2d, out_channels: $d, kernel_size: 1}
              - {type: Conv2d, out_channels: $double, kernel_size: 1}
        layers: [{type: B, name: b}]
        """)
    summary = convcalc.analyze(spec)
    assert [r.output_shape[0] for r in summary.layers] == [5, 8]


def test_a_block_that_uses_itself_is_named():
    message = error_of("""
        input: [3, 8, 8]
        blocks:
          A: {layers: [{type: B}]}
          B: {layers: [{type: A}]}
        layers: [{type: A, name: a}]
        """, SpecError)
    assert "block 'A' uses itself (A -> B -> A)" in message


def test_references_into_earlier_blocks_for_skip_connections():
    spec = load("""
        input: [3, 16, 16]
        blocks:
          Down:
            args: {c: required}
            layers:
              - {name: conv, type: Conv2d, out_channels: $c, kernel_size: 3, padding: 1}
              - {name: pool, type: MaxPool2d, kernel_size: 2}
        layers:
          - {name: down1, type: Down, c: 4}
          - {name: down2, type: Down, c: 8}
          - {name: up, type: Upsample2x, when: false}
          - {name: mid, type: Conv2d, out_channels: 4, kernel_size: 1}
          - {name: skip, type: Concat, from: [down2.conv, down2.conv]}
          - {name: by_index, type: Sequential, from: input, layers: [{type: ReLU}, {type: ReLU, from: 0}]}
        """.replace("type: Upsample2x, ", "type: ReLU, "))
    graph = convcalc.build_graph(spec)
    assert graph.node("skip").inputs == ("down2.conv", "down2.conv")
    assert graph.node("by_index.1").inputs == ("by_index.0",)
    assert convcalc.analyze(graph).layer("skip").output_shape == (16, 8, 8)


def test_group_names_cannot_collide_with_layer_names():
    message = error_of("""
        input: [3, 8, 8]
        blocks:
          B: {layers: [{type: ReLU}]}
        layers:
          - {name: s.0, type: ReLU}
          - {name: s, type: B, repeat: 2}
        """, GraphError)
    assert "duplicate layer name 's.0'" in message


@pytest.mark.parametrize("name", ["a b", "x[/]", "tab\there"])
def test_names_with_spaces_or_brackets_are_refused(name):
    message = error_of(f"""
        input: [3, 8, 8]
        layers: [{{type: ReLU, name: "{name}"}}]
        """, SpecError)
    assert "may not contain spaces, control characters or brackets" in message


def test_included_files_bring_blocks_and_args_once(tmp_path):
    (tmp_path / "common.yaml").write_text(
        "args: {width: 6}\nblocks:\n  W:\n    layers: [{type: Conv2d, out_channels: $width, kernel_size: 1}]\n")
    (tmp_path / "mid.yaml").write_text("include: common.yaml\n")
    (tmp_path / "net.yaml").write_text(
        "input: [3, 4, 4]\ninclude: [common.yaml, mid.yaml, common.yaml]\nlayers: [{type: W}]\n")
    assert convcalc.analyze(convcalc.load_spec(tmp_path / "net.yaml")).output_shape == (6, 4, 4)
    (tmp_path / "layers.yaml").write_text("layers: [{type: ReLU}]\n")
    (tmp_path / "bad.yaml").write_text("input: [3, 4, 4]\ninclude: layers.yaml\nlayers: [{type: ReLU}]\n")
    with pytest.raises(SpecError, match="'layers' is not allowed in an included file"):
        convcalc.load_spec(tmp_path / "bad.yaml")


def test_batchnorm_bias_keyword_as_torch_2_13():
    import torch

    spec = load("""
        input: [8, 4, 4]
        layers: [{type: BatchNorm2d, bias: false}]
        """)
    module = torch.nn.BatchNorm2d(8, bias=False)
    assert convcalc.analyze(spec).totals.params == sum(p.numel() for p in module.parameters()) == 8


def test_peak_activations_never_exceed_the_total():
    totals = convcalc.analyze(load("""
        input: [3, 32, 32]
        layers: [{type: ReLU}]
        """)).totals
    assert totals.activations == 3 * 32 * 32
    assert totals.peak_activations == 3 * 32 * 32


# ----------------------------------------------------------------------------- padding layers, conv extensions,
# broadcasting merges

@pytest.mark.parametrize("layer, expected", [
    ("{type: ReflectionPad2d, padding: [1, 4, 0, 0]}",
     "net.yaml:5:29: layer 'reflectionpad2d_1' (ReflectionPad2d): reflect padding 4 along the width must be"
     " smaller than the input size 4"),
    ("{type: ZeroPad2d, padding: [1, 4, 0]}",
     "net.yaml:5:23: layer 'zeropad2d_1' (ZeroPad2d): padding must be an integer or a list of 4 integers"
     " (left, right, top, bottom: F.pad's order, last axis first), got 3 values"),
    ("{type: CircularPad2d, padding: [3, -2, 0, 0]}",
     "net.yaml:5:27: layer 'circularpad2d_1' (CircularPad2d): circular padding 3 along the width wraps around"
     " more than once: the crop leaves 2 of the input's 4 positions"),
    ("{type: ConstantPad2d, padding: 1}",
     "net.yaml:5:5: layer 'constantpad2d_1' (ConstantPad2d): ConstantPad2d needs 'value'"),
    ("{type: Conv2d, out_channels: 4, kernel_size: 3, padding: tf-same}",
     "net.yaml:5:53: layer 'conv2d_1' (Conv2d): padding must be an integer, a list of 2 integers, a list of 2"
     " [before, after] pairs, 'valid', 'same', 'full' or 'tf_same', got the string 'tf-same'"),
    ("{type: Conv2d, out_channels: 4, kernel_size: 3, padding: [[2, 0]]}",
     "net.yaml:5:53: layer 'conv2d_1' (Conv2d): padding as explicit pads must be a list of 2 [before, after]"
     " pairs (one per spatial axis), got [[2, 0]]"),
    ("{type: Conv2d, out_channels: 4, kernel_size: 9, padding: tf_same, padding_mode: reflect}",
     "net.yaml:5:53: layer 'conv2d_1' (Conv2d): reflect padding 4 along the width must be smaller than the input"
     " size 4"),
    ("{type: Conv2d, out_channels: 4, kernel_size: 3, padding: [[-9, 0], [0, 0]]}",
     "net.yaml:5:53: layer 'conv2d_1' (Conv2d): padding (-9, 0) along the height crops 9 positions from an input"
     " of size 8"),
    ("{type: Conv2d, out_channels: 4, kernel_size: 3, algorithm: gemm}",
     "net.yaml:5:53: layer 'conv2d_1' (Conv2d): algorithm must be one of 'auto', 'direct', 'fft', 'winograd', got"
     " the string 'gemm'"),
    ("{type: Conv2d, out_channels: 4, kernel_size: 3, stride: 2, algorithm: winograd}",
     "net.yaml:5:64: layer 'conv2d_1' (Conv2d): algorithm 'winograd' (F(2, 3)) needs kernel_size 3 on every"
     " axis, stride 1, dilation 1 and groups 1; got kernel_size [3, 3], stride [2, 2], dilation [1, 1], groups 1"),
    ("{type: Multiply, from: [input, input, pooled]}",
     "net.yaml:5:22: layer 'multiply_1' (Multiply): Multiply cannot broadcast 'input' [3, 8, 4], 'input' [3, 8, 4],"
     " 'pooled' [3, 1, 2]: the sizes along dim 3 (the batch is dim 0) must be equal or 1, got 4, 4, 2"),
])
def test_padding_and_broadcast_error_messages(layer, expected):
    text = f"""
        input: [3, 8, 4]
        layers:
          - {{type: AdaptiveAvgPool2d, output_size: [1, 2], name: pooled}}
          - {{type: Identity, from: input}}
          - {layer}
        """
    assert error_of(text) == expected


def test_squeeze_and_excitation_gate_broadcasts():
    summary = convcalc.analyze(load("""
        input: [16, 8, 8]
        layers:
          - {type: AdaptiveAvgPool2d, output_size: 1, name: squeeze}
          - {type: Conv2d, out_channels: 4, kernel_size: 1}
          - {type: ReLU}
          - {type: Conv2d, out_channels: 16, kernel_size: 1}
          - {type: Sigmoid, name: gate}
          - {type: Multiply, from: [input, gate]}
        """))
    assert summary.output_shape == (16, 8, 8)
    assert summary.layers[-1].rf.whole


def test_unknown_type_names_the_nearest_types_not_all_of_them():
    """86 type names in one line bury the hint: the message names the nearest ones and where the list is."""
    count = len(convcalc.layers.type_names())
    assert error_of("""
        input: [3, 8, 8]
        layers:
          - {type: Conv2, out_channels: 4, kernel_size: 3}
        """) == f"net.yaml:3:6: unknown layer type 'Conv2'; did you mean 'Conv2d'? `convcalc layers` lists all {count} layer types"
    assert error_of("""
        input: [3, 8, 8]
        blocks:
          Stem: {layers: [{type: ReLU}]}
        layers:
          - {type: Foo}
        """) == (f"net.yaml:5:6: unknown layer type 'Foo'; `convcalc layers` lists all {count} layer types; this spec's"
                 " blocks: Stem")
    assert ("unknown layer type 'Pooling'; closest: LPPool2d, Split, LPPool3d, LPPool1d, MinPool3d;"
            in error_of("""
        input: [3, 8, 8]
        layers:
          - {type: Pooling}
        """))


def test_nested_repeats_that_expand_past_the_layer_limit_stop_at_once():
    """Three nested 10,000-repeats would be 10^12 layers: the graph refuses at the limit instead of hanging."""
    message = error_of("""
        input: [1, 4, 4]
        blocks:
          Inner: {layers: [{type: ReLU, repeat: 10000}]}
          Mid: {layers: [{type: Inner, repeat: 10000}]}
        layers:
          - {type: Mid, repeat: 10000}
        """, analyze=False)
    assert "the spec expands to more than 100,000 layers (nested repeats multiply)" in message


@pytest.mark.parametrize("text", ["$width", "$rates", "$in_shape", "$in_channels", "$flag", "$None", "$True",
                                  "$true", "$missing", "${width}", "$width ", "conv$width", "$" + "w" * 5000])
def test_a_plain_name_is_what_the_evaluator_gives(text):
    """`plain_name`, the builder's shortcut for '$name', answers only where the evaluator would give that very
    value (the same object), and leaves the rest (literals, unknown names, expressions, text) to it."""
    from convcalc.spec.expr import NOT_PLAIN, plain_name
    from convcalc.spec.shapes import BuildShapes, ScopeNames
    from convcalc.spec.graph import INPUT

    rates = [1, 2, 4]
    names = ScopeNames({"width": 64, "rates": rates, "flag": False, "in_channels": 5},
                       BuildShapes((3, 32, 32), []), INPUT, outer=frozenset({"in_channels"}))
    found = plain_name(text, names)
    try:
        expected = substitute(text, names)
    except ExprError:
        assert found is NOT_PLAIN
        return
    assert found is NOT_PLAIN or found is expected or (found == expected and type(found) is type(expected))
    if text in ("$width", "$rates", "$flag", "$in_shape", "$in_channels"):
        assert found is not NOT_PLAIN
    if text == "$rates":
        assert found is rates
