"""D-FINE model layer: HGNetv2 backbone, hybrid encoder, FDR decoder, mask head, postprocess,
checkpoint loading and size variants."""

from dfseg.nn.build import build_model
from dfseg.nn.mask_head import mask_logits
from dfseg.nn.model import DFine, ModelSpec, ModelSpecError
from dfseg.nn.variants import SIZE_SPECS, SizeSpec

__all__ = [
    "SIZE_SPECS",
    "DFine",
    "ModelSpec",
    "ModelSpecError",
    "SizeSpec",
    "build_model",
    "mask_logits",
]
