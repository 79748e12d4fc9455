"""fvcore's count of a built torch module on one image: parameters, FLOPs, activations.

FLOPs are multiply-adds as fvcore's `FlopCountAnalysis` counts them, activations fvcore's
`ActivationCountAnalysis` total, both in eval mode on one zero image; parameters are
``sum(p.numel() for p in model.parameters())`` (`scalesearch.net.complexity` for the rules).
"""

from __future__ import annotations

import warnings

from scalesearch.net.analytic import Counts


def count_module(model, resolution: int) -> Counts:
    """Counts of `model` (put in eval mode) on one square RGB image of side `resolution`."""
    import torch

    with warnings.catch_warnings():
        # fvcore touches torch.jit, which newer torch releases flag as deprecated.
        warnings.simplefilter("ignore", FutureWarning)
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis

    model = model.eval()
    image = torch.zeros(1, 3, resolution, resolution)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        flops = FlopCountAnalysis(model, image)
        flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        activations = ActivationCountAnalysis(model, image)
        activations.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        return Counts(
            params=sum(p.numel() for p in model.parameters()),
            flops=int(flops.total()),
            activations=int(activations.total()),
        )
