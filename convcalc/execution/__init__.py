"""Stage 6, execution: run the network with NumPy.

Owns the generic executor walk (``network``: parameters laid out per layer, BatchNorm folding, in-place layers,
fused residual sums, the per-layer checks of every prediction), the weights (``weights``: PyTorch's default
initialisation, hand-set filters, ``.npz`` state dicts checked key by key), the inputs (``inputs``: images,
``.npy`` batches, the built-in test image, normalisation), what files declare before their payload is read
(``headers``: .npy and .npz headers, image sizes) and the memory a run needs against its budget (``memory``: the
estimate from the analysis, ``--max-memory``). The numeric kernels themselves live one stage down in
``convcalc.kernels``, where the layer units call them. May import ``errors``, ``algebra``, ``kernels``, ``layers``,
``spec`` and ``analysis``.
"""
