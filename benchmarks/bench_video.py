"""Video throughput: end-to-end frames/s of `dfseg infer` on a generated 720p video against the
model-only frames/s of the same predictor, with and without tracking.

The video (1280x720, mp4v, moving and occluding shapes from `render_tracking_video`) and a
D-FINE checkpoint (randomly initialised and batch-norm calibrated, as in bench_end_to_end.py;
its detections are not meaningful, its cost is the real one) are made once in `--workdir`.
Modes, each timed `--repeats` times in turns (medians reported):

  model only   the frames decoded beforehand into memory, then `Predictor.predict_arrays` per
               frame: pre-processing, inference and post-processing, nothing else;
  serial       one thread decodes a frame, predicts it, draws it and encodes it, in turn (what a
               plain OpenCV loop does);
  infer        `dfseg.runtime.infer.infer`: reader thread -> model -> writer thread, writing the
               annotated video and predictions.jsonl, as `dfseg infer VIDEO` does;
  infer+track  the same with `--track` (ByteTrack, MOTChallenge files added).

The ratio column is each mode's frames/s over model-only; the target for `infer` is >= 0.9.
`infer` times include its own one-frame warm-up and the closing of its files.

    python benchmarks/bench_video.py --size n --image-size 640 --frames 150 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from dfseg.data.synthetic_video import render_tracking_video
from dfseg.runtime.infer import infer, infer_options
from dfseg.runtime.predictor import Predictor, load_predictor
from dfseg.runtime.sources import open_sources

sys.path.insert(0, str(Path(__file__).parent))
from bench_end_to_end import make_checkpoint


def decoded_frames(video: Path) -> list:
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def model_only(predictor: Predictor, frames: list) -> float:
    started = time.perf_counter()
    for frame in frames:
        predictor.predict_arrays([frame])
    return len(frames) / (time.perf_counter() - started)


def serial(predictor: Predictor, video: Path, out: Path) -> float:
    started = time.perf_counter()
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    writer = None
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        detections = predictor.predict_arrays([frame])[0]
        if writer is None:
            height, width = frame.shape[:2]
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            writer = cv2.VideoWriter(str(out), fourcc, fps, (width, height))
        writer.write(detections.plot(frame))
        count += 1
    capture.release()
    if writer is not None:
        writer.release()
    return count / (time.perf_counter() - started)


def pipelined(predictor: Predictor, video: Path, out: Path, track: bool) -> float:
    options = infer_options(None, track=track, save_json=True)
    report = infer(predictor, open_sources(video), out, options)
    assert report.frames > 0 and not report.unreadable, report
    return report.frames / report.seconds


def cpu_name() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return "unknown CPU"
    for line in text.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="n", choices=list("nsmlx"))
    parser.add_argument("--task", default="detect", choices=["detect", "segment"])
    parser.add_argument("--image-size", type=int, default=640)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="model threads (default: all)")
    parser.add_argument("--backend", default="torch", help="torch | onnxruntime | openvino")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-video")
    args = parser.parse_args()

    args.workdir.mkdir(parents=True, exist_ok=True)
    video = args.workdir / f"shapes-720p-{args.frames}.mp4"
    if not video.is_file():
        render_tracking_video(
            video, num_frames=args.frames, image_size=(720, 1280), num_objects=8, speed=8, seed=0
        )
    checkpoint = make_checkpoint(
        args.size,
        args.task,
        args.image_size,
        args.workdir / f"{args.size}-{args.task}-{args.image_size}",
    )
    artifact: Path = checkpoint
    if args.backend != "torch":
        from bench_end_to_end import exported_files

        artifact = exported_files(checkpoint)[
            "onnx" if args.backend == "onnxruntime" else "openvino"
        ]
    predictor = load_predictor(artifact, threads=args.threads)
    predictor.warmup()
    frames = decoded_frames(video)

    results: dict[str, list[float]] = {
        "model only": [],
        "serial": [],
        "infer": [],
        "infer+track": [],
    }
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            results["model only"].append(model_only(predictor, frames))
            results["serial"].append(
                serial(predictor, video, Path(scratch) / f"serial{repeat}.mp4")
            )
            results["infer"].append(
                pipelined(predictor, video, Path(scratch) / f"i{repeat}", False)
            )
            results["infer+track"].append(
                pipelined(predictor, video, Path(scratch) / f"t{repeat}", True)
            )

    base = statistics.median(results["model only"])
    print(
        f"{cpu_name()}; D-FINE-{args.size.upper()} {args.task} at {args.image_size} px, "
        f"{args.backend}, threads {args.threads or 'all'}; {len(frames)} frames of 1280x720; "
        f"median of {args.repeats}"
    )
    print(f"{'mode':<12} {'frames/s':>9} {'ratio':>6}   runs")
    for name, values in results.items():
        runs = " ".join(f"{v:.2f}" for v in values)
        median = statistics.median(values)
        print(f"{name:<12} {median:>9.2f} {median / base:>6.2f}   {runs}")


if __name__ == "__main__":
    main()
