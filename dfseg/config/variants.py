"""The D-FINE sizes n/s/m/l/x: one table of everything a size means (timm's `pretrained_cfg`).

Each `ModelVariant` holds the architecture of the official COCO config, its AdamW defaults and
its official pretrained files. The table is plain data (no torch), so the project file is
validated against it instantly (`model.size=n model.pretrained=obj2coco` is a config error) and
`dfseg.nn.build_model` builds from the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

ModelSize = Literal["n", "s", "m", "l", "x"]

# Where the official D-FINE weights are published (linked from the official README's model zoo).
PRETRAINED_RELEASE_URL = "https://github.com/Peterande/storage/releases/download/dfinev1.0"


@dataclass(frozen=True)
class ModelVariant:
    """One D-FINE size.

    Attributes:
        name: "n", "s", "m", "l" or "x".
        backbone: HGNetv2 variant ("B0".."B6").
        use_lab: learnable affine blocks in the backbone.
        return_idx: backbone stages fed to the encoder (0..3 = strides 4, 8, 16, 32).
        freeze_stem: official L/X freeze the backbone stem.
        freeze_norm: official L/X use FrozenBatchNorm2d in the backbone.
        encoder_hidden_dim: channels of every encoder level.
        encoder_ffn_dim: AIFI feed-forward width.
        expansion: RepNCSPELAN4 width factor.
        depth_mult: RepNCSPELAN4 depth factor.
        decoder_hidden_dim: query width.
        decoder_ffn_dim: decoder feed-forward width.
        num_points: deformable sampling points per level.
        num_decoder_layers: decoder layers.
        reg_scale: FDR curvature.
        base_lr: official base learning rate (AdamW).
        backbone_lr: official backbone learning rate.
        weight_decay: official weight decay.
        pretrained: official weights by name -> file under `PRETRAINED_RELEASE_URL`. "coco":
            trained on COCO; "obj2coco": Objects365 pre-training then COCO; "obj365":
            Objects365 only.
    """

    name: str
    backbone: str
    use_lab: bool
    return_idx: tuple[int, ...]
    freeze_stem: bool
    freeze_norm: bool
    encoder_hidden_dim: int
    encoder_ffn_dim: int
    expansion: float
    depth_mult: float
    decoder_hidden_dim: int
    decoder_ffn_dim: int
    num_points: tuple[int, ...]
    num_decoder_layers: int
    reg_scale: int
    base_lr: float
    backbone_lr: float
    weight_decay: float
    pretrained: Mapping[str, str] = field(default_factory=dict)

    @property
    def feat_strides(self) -> tuple[int, ...]:
        """Strides of the encoder levels."""
        return tuple(4 * 2**i for i in self.return_idx)

    def pretrained_url(self, name: str) -> str:
        """Release URL of the official weights `name`; ValueError naming those that exist."""
        if name not in self.pretrained:
            raise ValueError(
                f"no official {name!r} weights for size {self.name!r}; available: "
                f"{', '.join(self.pretrained)}"
            )
        return f"{PRETRAINED_RELEASE_URL}/{self.pretrained[name]}"


_SMALL = {"freeze_stem": False, "freeze_norm": False, "use_lab": True}
_LARGE = {"freeze_stem": True, "freeze_norm": True, "use_lab": False}

MODEL_VARIANTS: dict[str, ModelVariant] = {
    "n": ModelVariant(
        name="n", backbone="B0", return_idx=(2, 3), **_SMALL,
        encoder_hidden_dim=128, encoder_ffn_dim=512, expansion=0.34, depth_mult=0.5,
        decoder_hidden_dim=128, decoder_ffn_dim=512, num_points=(6, 6), num_decoder_layers=3,
        reg_scale=4, base_lr=8e-4, backbone_lr=4e-4, weight_decay=1e-4,
        pretrained={"coco": "dfine_n_coco.pth"},
    ),
    "s": ModelVariant(
        name="s", backbone="B0", return_idx=(1, 2, 3), **_SMALL,
        encoder_hidden_dim=256, encoder_ffn_dim=1024, expansion=0.5, depth_mult=0.34,
        decoder_hidden_dim=256, decoder_ffn_dim=1024, num_points=(3, 6, 3), num_decoder_layers=3,
        reg_scale=4, base_lr=2e-4, backbone_lr=1e-4, weight_decay=1e-4,
        pretrained={
            "coco": "dfine_s_coco.pth", "obj2coco": "dfine_s_obj2coco.pth",
            "obj365": "dfine_s_obj365.pth",
        },
    ),
    "m": ModelVariant(
        name="m", backbone="B2", return_idx=(1, 2, 3), **_SMALL,
        encoder_hidden_dim=256, encoder_ffn_dim=1024, expansion=1.0, depth_mult=0.67,
        decoder_hidden_dim=256, decoder_ffn_dim=1024, num_points=(3, 6, 3), num_decoder_layers=4,
        reg_scale=4, base_lr=2e-4, backbone_lr=2e-5, weight_decay=1e-4,
        pretrained={
            "coco": "dfine_m_coco.pth", "obj2coco": "dfine_m_obj2coco.pth",
            "obj365": "dfine_m_obj365.pth",
        },
    ),
    "l": ModelVariant(
        name="l", backbone="B4", return_idx=(1, 2, 3), **_LARGE,
        encoder_hidden_dim=256, encoder_ffn_dim=1024, expansion=1.0, depth_mult=1.0,
        decoder_hidden_dim=256, decoder_ffn_dim=1024, num_points=(3, 6, 3), num_decoder_layers=6,
        reg_scale=4, base_lr=2.5e-4, backbone_lr=1.25e-5, weight_decay=1.25e-4,
        pretrained={
            "coco": "dfine_l_coco.pth", "obj2coco": "dfine_l_obj2coco_e25.pth",
            "obj365": "dfine_l_obj365_e25.pth",
        },
    ),
    "x": ModelVariant(
        name="x", backbone="B5", return_idx=(1, 2, 3), **_LARGE,
        encoder_hidden_dim=384, encoder_ffn_dim=2048, expansion=1.0, depth_mult=1.0,
        decoder_hidden_dim=256, decoder_ffn_dim=1024, num_points=(3, 6, 3), num_decoder_layers=6,
        reg_scale=8, base_lr=2.5e-4, backbone_lr=2.5e-6, weight_decay=1.25e-4,
        pretrained={
            "coco": "dfine_x_coco.pth", "obj2coco": "dfine_x_obj2coco.pth",
            "obj365": "dfine_x_obj365.pth",
        },
    ),
}  # fmt: skip

if tuple(MODEL_VARIANTS) != get_args(ModelSize):  # the Literal is what config errors list
    raise AssertionError("ModelSize must list exactly the sizes of MODEL_VARIANTS")

# Every name of official weights some size has (what `model.pretrained` downloads).
PRETRAINED_NAMES: tuple[str, ...] = tuple(
    dict.fromkeys(name for variant in MODEL_VARIANTS.values() for name in variant.pretrained)
)


def model_variant(size: str) -> ModelVariant:
    """The registered variant of `size`; ValueError naming the valid sizes."""
    if size not in MODEL_VARIANTS:
        raise ValueError(f"unknown D-FINE size {size!r}; expected one of {list(MODEL_VARIANTS)}")
    return MODEL_VARIANTS[size]
