"""Stage 3, layers: one unit per layer family, each owning its shapes, costs, receptive field and execution.

Owns the unit contract and its records (``base``), argument parsing and validation (``args``), the registry of type
names (``registry``; importing this package registers every layer type), one dependency-walk step (``support``),
and the families: convolution, dense, elementwise, merge, pooling, channel shuffle, composite, unshared, padding,
transposed convolution, resampling and unpooling. May import ``errors``, ``algebra`` and ``kernels``; never the spec
(the graph is built from units, not the reverse), nor any later stage.
"""

from . import conv, dense, elementwise, merge, pool  # noqa: F401  (registration side effects)
from . import shuffle  # noqa: F401  (ChannelShuffle)
from . import activations  # noqa: F401  (Mish, Softplus, SELU, CELU, Hardtanh, Threshold, LogSoftmax, Softmin, GLU)
from . import composite  # noqa: F401  (depthwise-separable, spatially separable, flattened, gated)
from . import unshared  # noqa: F401  (LocallyConnected1d/2d, TiledConv2d)
from . import channel_pool  # noqa: F401  (Maxout, ChannelMaxPool, ChannelAvgPool)
from . import partial  # noqa: F401  (PartialConv2d, PartialConvMask2d)
from . import padding  # noqa: F401  (ZeroPad/ConstantPad/ReflectionPad/ReplicationPad/CircularPad)
from . import transposed  # noqa: F401  (ConvTranspose1d/2d/3d)
from . import pool_extra  # noqa: F401  (LPPool, MinPool, GlobalAvgPool/GlobalMaxPool)
from . import resample  # noqa: F401  (Upsample, UpsamplingNearest2d/Bilinear2d, PixelShuffle/PixelUnshuffle)
from . import unpool  # noqa: F401  (MaxUnpool1d/2d/3d, naming their MaxPool)
from . import layout  # noqa: F401  (Permute, Unflatten, Reshape/View, Narrow, Chunk, Split)
from . import norm  # noqa: F401  (LayerNorm, LayerNorm2d, GroupNorm, InstanceNorm1d/2d/3d, LocalResponseNorm)
from . import learnable  # noqa: F401  (LearnableTensor, StochasticDepth)
from .args import REQUIRED
from .base import Inferred, Layer
from .registry import is_registered, layer_types, lookup, type_names

__all__ = ["REQUIRED", "Inferred", "Layer", "is_registered", "layer_types", "lookup", "type_names"]
