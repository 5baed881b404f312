"""The D-FINE sizes n/s/m/l/x as registered specs (official COCO configs)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SizeSpec:
    """Architecture of one D-FINE size.

    Attributes:
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

    @property
    def feat_strides(self) -> tuple[int, ...]:
        """Strides of the encoder levels."""
        return tuple(4 * 2**i for i in self.return_idx)


_COMMON_SMALL = {"freeze_stem": False, "freeze_norm": False, "use_lab": True}
_COMMON_LARGE = {"freeze_stem": True, "freeze_norm": True, "use_lab": False}

SIZE_SPECS: dict[str, SizeSpec] = {
    "n": SizeSpec(
        name="n", backbone="B0", return_idx=(2, 3), **_COMMON_SMALL,
        encoder_hidden_dim=128, encoder_ffn_dim=512, expansion=0.34, depth_mult=0.5,
        decoder_hidden_dim=128, decoder_ffn_dim=512, num_points=(6, 6), num_decoder_layers=3,
        reg_scale=4, base_lr=8e-4, backbone_lr=4e-4, weight_decay=1e-4,
    ),
    "s": SizeSpec(
        name="s", backbone="B0", return_idx=(1, 2, 3), **_COMMON_SMALL,
        encoder_hidden_dim=256, encoder_ffn_dim=1024, expansion=0.5, depth_mult=0.34,
        decoder_hidden_dim=256, decoder_ffn_dim=1024, num_points=(3, 6, 3), num_decoder_layers=3,
        reg_scale=4, base_lr=2e-4, backbone_lr=1e-4, weight_decay=1e-4,
    ),
    "m": SizeSpec(
        name="m", backbone="B2", return_idx=(1, 2, 3), **_COMMON_SMALL,
        encoder_hidden_dim=256, encoder_ffn_dim=1024, expansion=1.0, depth_mult=0.67,
        decoder_hidden_dim=256, decoder_ffn_dim=1024, num_points=(3, 6, 3), num_decoder_layers=4,
        reg_scale=4, base_lr=2e-4, backbone_lr=2e-5, weight_decay=1e-4,
    ),
    "l": SizeSpec(
        name="l", backbone="B4", return_idx=(1, 2, 3), **_COMMON_LARGE,
        encoder_hidden_dim=256, encoder_ffn_dim=1024, expansion=1.0, depth_mult=1.0,
        decoder_hidden_dim=256, decoder_ffn_dim=1024, num_points=(3, 6, 3), num_decoder_layers=6,
        reg_scale=4, base_lr=2.5e-4, backbone_lr=1.25e-5, weight_decay=1.25e-4,
    ),
    "x": SizeSpec(
        name="x", backbone="B5", return_idx=(1, 2, 3), **_COMMON_LARGE,
        encoder_hidden_dim=384, encoder_ffn_dim=2048, expansion=1.0, depth_mult=1.0,
        decoder_hidden_dim=256, decoder_ffn_dim=1024, num_points=(3, 6, 3), num_decoder_layers=6,
        reg_scale=8, base_lr=2.5e-4, backbone_lr=2.5e-6, weight_decay=1.25e-4,
    ),
}  # fmt: skip


def size_spec(size: str) -> SizeSpec:
    """The registered spec of `size`; raises ValueError naming the valid sizes."""
    if size not in SIZE_SPECS:
        raise ValueError(f"unknown D-FINE size {size!r}; expected one of {sorted(SIZE_SPECS)}")
    return SIZE_SPECS[size]
