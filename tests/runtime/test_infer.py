"""`run_infer` end to end on images, an unreadable file and a generated video."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from test_sources_sinks import write_video

from dfseg.runtime.infer import InferOptions, run_infer


def _media(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.jpg", "b.png"):
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    (folder / "c.jpg").write_bytes(b"\xff\xd8 truncated")
    write_video(folder / "clip.mp4", frames=4, size_wh=(128, 96), fps=10.0)
    return folder


def test_infer_writes_every_output_and_skips_unreadable_files(
    segment_run_dir: Path, tmp_path: Path
) -> None:
    media = _media(tmp_path / "media")
    options = InferOptions(
        conf=0.0, max_det=3, batch=2, save_txt=True, save_conf=True, save_crops=True,
        crop_padding=2, threads=2,
    )  # fmt: skip
    report = run_infer(segment_run_dir, media, options)
    out = Path(report.out_dir)
    assert out == segment_run_dir / "infer"
    assert (report.images, report.videos, report.frames) == (2, 1, 4)
    assert len(report.unreadable) == 1 and "c.jpg" in report.unreadable[0]
    assert report.detections == 3 * 6 and sum(report.per_class.values()) == 18
    assert set(report.timing_ms) == {"preprocess", "inference", "postprocess", "total"}

    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(records) == 2 + 1 + 4  # one line per image or frame, unreadable ones included
    assert [r["name"] for r in records[:3]] == ["a.jpg", "b.png", "c.jpg"]
    assert "error" in records[2] and records[3]["frame"] == 0 and records[6]["frame"] == 3
    assert all(len(r["detections"]) == 3 for r in records if "error" not in r)

    labels = sorted(p.name for p in (out / "labels").iterdir())
    assert labels == ["a.txt", "b.txt"] + [f"clip_{i:06d}.txt" for i in range(4)]
    rows = (out / "labels" / "a.txt").read_text().splitlines()
    assert len(rows) == 3
    values = [float(v) for v in rows[0].split()[1:]]
    assert len(values) % 2 == 1 and all(0 <= v <= 1 for v in values)  # polygon + score
    assert values[-1] == records[0]["detections"][0]["score"]

    assert (out / "a.jpg").is_file() and (out / "b.png").is_file()
    assert not (out / "c.jpg").exists()
    crops = list((out / "crops").rglob("*.jpg"))
    assert len(crops) <= 18 and any(p.name.startswith("clip_000003_") for p in crops)

    video = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    assert video.get(cv2.CAP_PROP_FPS) == 10.0
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (128, 96)
    video.release()

    again = run_infer(segment_run_dir, media / "a.jpg", InferOptions(save_json=False))
    assert Path(again.out_dir).name == "infer-2" and again.images == 1
