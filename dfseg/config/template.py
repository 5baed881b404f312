"""The commented project file `dfseg init` writes. It validates as written (a test checks)."""

from __future__ import annotations

from string import Template

_TEMPLATE = Template(
    """\
# dfseg project file. Every command takes it as its first argument:
#   dfseg check $filename     validate the dataset
#   dfseg split $filename     write train/val/test lists
#   dfseg train $filename     train; override any key: dfseg train $filename train.epochs=5
# Relative paths resolve against this file's folder. Unknown keys are errors.

project:
  name: $name                 # outputs go to <output>/<name>/ (split lists, exp, exp-2, ...)
  task: $task               # detect (boxes) | segment (+ instance masks) | semantic (pixels)
  output: runs

data:
  path: $data_path           # your dataset folder, read in place (never modified)
  format: $data_format                # yolo | coco | voc | masks (semantic: PNG class masks)
  classes: $classes   # $classes_comment
  image_size: [$height, $width]      # network input (h, w), multiples of 32
  keep_ratio: false           # true: letterbox (pad) instead of stretching
  tile: null                  # large images: train on random tiles of this many pixels
  split: $split

model:
  size: $size                     # n | s | m | l | x  (latency grows with size)
  pretrained: null            # official D-FINE .pth or a dfseg best.pt; 'coco' downloads it
  decode: nms                 # topk | one_per_query | nms (class-aware, drops overlaps > nms_iou)
  nms_iou: 0.5
  num_queries: 100            # the most objects found per image (up to 300; official 300)

train:
  epochs: 50
  batch_size: 8
  lr: null                    # null: the size's D-FINE default (backbone_lr likewise)
  amp: auto                   # CUDA mixed precision: auto | bf16 | fp16 | off
  decision_metric: $metric   # picks best.pt: map50_95 | map50 | f1 (semantic: miou)
  early_stopping: 0           # stop after N epochs without improvement (0: never)
  use_mal: null               # DEIM's MAL loss; null: MAL from scratch, VFL when fine-tuning
  query_groups: 3             # Group DETR: G query groups in training only (inference: the first)
  distill:
    teacher: null             # a trained run (or best.pt) of a larger size teaches this one

augment:
  mosaic: 0.0                 # probability of a 4-image mosaic (slows short runs; try 0.5)
  mixup: 0.0                  # probability of blending in a second image (DEIM: 0.5)
  copy_paste: 0.0             # segment: probability of pasting another image's instances
  mosaic_off_last_epochs: 2
  hflip: 0.5
  multiscale: false

export:
  formats: [onnx, openvino]   # onnx | openvino | trt
  half: false
  dynamic_batch: false
  num_queries: null           # detect/segment: fewer decoder queries, faster (check: dfseg bench)
  decoder_layers: null        # detect/segment: stop after N decoder layers, faster

infer:
  conf: null                  # null: the threshold tuned after training (best F1)
  save_txt: false
  streams: null               # OpenVINO: N parallel streams for folders/videos (images/s)
  track: false                # videos: ByteTrack ids across frames (tracker: thresholds, buffer)
  tile:
    size: null                # large images: predict tile by tile (pixels), masks stitched
    overlap: 0.2

bench:
  runs: 30
  max_drop: null              # fail when a format loses more than this (e.g. 0.01)
"""
)


def render_project_template(
    name: str = "project",
    task: str = "detect",
    size: str = "s",
    data_path: str = "data",
    data_format: str = "yolo",
    classes: list[str] | None = None,
    image_size: tuple[int, int] = (640, 640),
    filename: str = "project.yaml",
    split_sources: dict[str, str] | None = None,
) -> str:
    """The commented YAML text of a new project file.

    Args:
        classes: class names in id order; [] writes `classes: []` (names read from the
            dataset); None writes placeholders to edit.
        split_sources: the dataset's own split folders / lists (split name -> path relative to
            the dataset), written as `split: {train: ..., val: ...}`; None writes ratios.
    """
    if classes is None:
        names, comment = (
            "[class0, class1]",
            "names in id order (ids are 0-based), or {0: cat, 1: dog}",
        )
    elif not classes:
        names, comment = "[]", "[]: read from the dataset (set them to fix the order)"
    else:
        names, comment = "[" + ", ".join(classes) + "]", "names in id order (ids are 0-based)"
    if split_sources:
        listed = ", ".join(f"{split}: {path}" for split, path in split_sources.items())
        split = "{" + listed + "}   # the dataset's own splits (folders / lists), used as they are"
    else:
        split = "{train: 0.8, val: 0.2, test: 0.0, seed: 42}   # ratios, or the dataset's folders"
    return _TEMPLATE.substitute(
        name=name,
        task=task,
        size=size,
        data_path=data_path,
        data_format=data_format,
        classes=names,
        classes_comment=comment,
        height=image_size[0],
        width=image_size[1],
        filename=filename,
        split=split,
        metric="miou    " if task == "semantic" else "map50_95",
    )
