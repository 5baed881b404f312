"""D-FINE model layer: HGNetv2 backbone, hybrid encoder, FDR decoder, mask head, postprocess,
checkpoint loading, pretrained weights and size variants.

    model = build_model("s", num_classes=3, task="segment", image_size=(640, 640))
    report = load_checkpoint(model, download_pretrained("s", cache_dir))
    outputs = model.eval()(images)  # images: [B, 3, H, W] RGB in [0, 1]
"""

from dfseg.nn.build import build_described_model, build_model, describe_model
from dfseg.nn.checkpoint import CheckpointError, LoadReport, load_checkpoint
from dfseg.nn.info import ModelInfo, model_info
from dfseg.nn.mask_head import mask_logits
from dfseg.nn.model import DFine, ModelSpecError
from dfseg.nn.postprocess import DetectionPostprocess
from dfseg.nn.pretrained import PretrainedDownloadError, download_pretrained, pretrained_url

__all__ = [
    "CheckpointError",
    "DFine",
    "DetectionPostprocess",
    "LoadReport",
    "ModelInfo",
    "ModelSpecError",
    "PretrainedDownloadError",
    "build_described_model",
    "build_model",
    "describe_model",
    "download_pretrained",
    "load_checkpoint",
    "mask_logits",
    "model_info",
    "pretrained_url",
]
