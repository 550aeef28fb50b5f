"""Which input channels each output channel reads (`Layer.channel_reads`), for receptive fields that are exact per
channel segment (`convcalc.analysis.channels`).

A layer states its channel dependency in one of four forms:

* ``None`` (the default): every output channel reads every channel of every input (a dense conv, a Linear, a norm
  or softmax over the channels, a reshape). The output's channels then all share one field.
* `SAME`: output channel c reads channel c of every input (channel 0 of an input broadcast along the channels):
  activations, BatchNorm, pooling, padding, resampling, Add/Multiply, a depthwise conv with one output per channel.
* a `Gather`: output channel c reads one channel of one input, in any order (a channel shuffle).
* a tuple of `Block`s covering the output channels in order: block ``[start, stop)`` reads, per `Source`, either
  one input channel per output channel (``each``: output channel start + k reads input channel source.start + k)
  or every channel of a range (a group of a grouped conv). A slice along the channels (Narrow, Split, Chunk), a
  concatenation along them, groups, a window along the channels (Maxout, LocalResponseNorm).

Only plain Python here: the analysis imports it and imports no NumPy.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence, Union


# The walk asks for channel reads only of tensors with at most this many channels (a gather or a window along the
# channels is stated channel by channel); past it every output channel is taken to read every input channel, which is
# always sound (one field for all the channels, the channel-blind answer).
MOST_CHANNELS = 1 << 16


class _Same:
    """Output channel c reads channel c of every input (see the module)."""

    def __repr__(self) -> str:
        return "SAME"


SAME = _Same()


class Source(NamedTuple):
    """What a block of output channels reads of input ``input``: channel ``start + k`` for output channel k of the
    block (``each``; the range is the block's length), or every channel of ``[start, stop)``."""

    input: int
    start: int
    stop: int
    each: bool = True


class Block(NamedTuple):
    """Output channels ``[start, stop)`` and what they read (`Source`s; inputs not named are not read)."""

    start: int
    stop: int
    sources: tuple[Source, ...]


class Gather(NamedTuple):
    """Output channel c reads channel ``channels[c]`` of input ``input`` alone (a permutation: a channel shuffle)."""

    channels: tuple[int, ...]
    input: int = 0


ChannelReads = Union[None, _Same, Gather, tuple[Block, ...]]


def sliced(start: int, length: int) -> tuple[Block, ...]:
    """The channels ``start .. start + length - 1`` of the one input (Narrow, Split, Chunk along the channels)."""
    return (Block(0, length, (Source(0, start, start + length),)),)


def joined(channels: Sequence[int]) -> tuple[Block, ...]:
    """The inputs' channels one after another (Concat along the channels)."""
    blocks, offset = [], 0
    for index, count in enumerate(channels):
        blocks.append(Block(offset, offset + count, (Source(index, 0, count),)))
        offset += count
    return tuple(blocks)


def grouped(out_channels: int, in_channels: int, groups: int) -> ChannelReads:
    """``groups`` groups: each output channel reads every input channel of its group (None for one group; SAME
    for one channel per group on both sides: a depthwise conv)."""
    if groups <= 1:
        return None
    if out_channels == in_channels == groups:
        return SAME
    per_out, per_in = out_channels // groups, in_channels // groups
    return tuple(Block(g * per_out, (g + 1) * per_out, (Source(0, g * per_in, (g + 1) * per_in, each=False),))
                 for g in range(groups))


def windows(out_channels: int, in_channels: int, kernel: int, stride: int, pad_lo: int = 0) -> tuple[Block, ...]:
    """Output channel c reads input channels c*stride - pad_lo .. + kernel - 1 that exist (a window along the
    channels: Maxout, channel pooling, a local response norm's band)."""
    blocks = []
    for c in range(out_channels):
        first = max(0, c * stride - pad_lo)
        last = min(in_channels, c * stride - pad_lo + kernel)
        sources = (Source(0, first, last, each=False),) if last > first else ()
        blocks.append(Block(c, c + 1, sources))
    return tuple(blocks)


def along_channels(axis: int, reads: ChannelReads) -> ChannelReads:
    """``reads`` for a layer working along batchless ``axis``: those reads along the channels (axis 0), else SAME
    (every channel treated alike, each on its own)."""
    return reads if axis == 0 else SAME


__all__ = ["MOST_CHANNELS", "SAME", "Block", "ChannelReads", "Gather", "Source", "along_channels", "grouped", "joined", "sliced",
           "windows"]

