"""Training dataloader throughput (images/s) with the default augmentations (mosaic on).

Datasets: a generated YOLO-seg set of realistic-size JPEGs (`generate_synthetic_dataset`, 1080p
by default) and, when present, `../shared/data/potholes-yolo-seg`. For each dataset, task
(detect, segment) and worker count, it iterates the loader built by `build_train_loader` at
640x640, batch 4, for a fixed number of batches after a warm-up (worker start-up excluded) and
reports images/s, median seconds per batch and the share of samples that were mosaics; with
`--cache ram disk` also with the decoded images cached (`data.cache`, filled before timing).

    python benchmarks/bench_dataloader.py --workers 0 2 --batches 20
    python benchmarks/bench_dataloader.py --cache none ram disk --tasks detect --workers 0

A D-FINE-N training step at 640 takes about 1 s for batch 4 on the 2-core CPU machine, so the
loader keeps up when it delivers well over 4 images/s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from dfseg.config.train import AugmentConfig
from dfseg.data.dataset import InstanceDataset
from dfseg.data.image_cache import ImageCache
from dfseg.data.loader import build_train_loader
from dfseg.data.reading import read_dataset
from dfseg.data.synthetic import generate_synthetic_dataset
from dfseg.structures import ImageAnnotation

POTHOLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "potholes-yolo-seg"


def measure(
    annotations: list[ImageAnnotation],
    task: str,
    workers: int,
    settings: AugmentConfig,
    batches: int,
    warmup: int,
    input_size: int,
    batch_size: int,
    cache: str = "none",
    cache_dir: Path | None = None,
) -> tuple[float, float, float]:
    """(images/s, median s/batch, mosaic share) over `batches` batches after `warmup`."""
    dataset = InstanceDataset(annotations, (input_size, input_size), task, "train", settings)
    if cache != "none":
        image_cache = ImageCache(cache, cache_dir)  # type: ignore[arg-type]
        image_cache.fill(annotations, dataset.cache_reductions())  # filled before timing
        dataset.attach_cache(image_cache)
    loader = build_train_loader(dataset, batch_size=batch_size, num_workers=workers, seed=0)
    durations: list[float] = []
    images_seen = 0
    mosaics = samples = 0
    epoch = 0
    while len(durations) < warmup + batches:
        dataset.set_epoch(epoch, total_epochs=1000)
        mosaics += sum(bool(r.mosaic_partners) for batch in loader.batch_sampler for r in batch)
        samples += len(dataset)
        start = time.perf_counter()
        for images, _ in loader:
            durations.append(time.perf_counter() - start)
            if len(durations) > warmup:
                images_seen += len(images)
            if len(durations) == warmup + batches:
                break
            start = time.perf_counter()
        epoch += 1
    timed = durations[warmup:]
    return images_seen / sum(timed), statistics.median(timed), mosaics / max(samples, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--tasks", nargs="+", default=["detect", "segment"])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--input-size", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--images", type=int, default=48, help="generated images")
    parser.add_argument("--image-size", type=int, nargs=2, default=[1080, 1920], help="H W")
    parser.add_argument("--mosaic", type=float, default=None, help="override mosaic probability")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep generated data here")
    parser.add_argument("--cache", nargs="+", default=["none"], choices=["none", "ram", "disk"])
    args = parser.parse_args()

    settings = AugmentConfig()
    if args.mosaic is not None:
        settings = replace(settings, mosaic=args.mosaic)
    work_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench_dataloader_"))
    start = time.perf_counter()
    synthetic_root = generate_synthetic_dataset(
        work_dir / "synthetic",
        num_images=args.images,
        image_size=tuple(args.image_size),
        max_objects=8,
        min_object_size=40,
    )
    print(
        f"generated {args.images} images {args.image_size[1]}x{args.image_size[0]} in "
        f"{time.perf_counter() - start:.1f} s ({synthetic_root})"
    )
    datasets = {"synthetic": read_dataset(synthetic_root, "yolo").images}
    if POTHOLES.is_dir():
        datasets["potholes"] = read_dataset(POTHOLES, "yolo").images
    print(
        f"input {args.input_size}, batch {args.batch_size}, mosaic p={settings.mosaic}, "
        f"{args.batches} batches after {args.warmup} warm-up"
    )
    print(
        f"{'dataset':<10} {'task':<8} {'cache':<5} {'workers':>7} {'images/s':>9} {'s/batch':>8} "
        f"{'mosaic':>7}"
    )
    for name, dataset_images in datasets.items():
        for task in args.tasks:
            for cache, workers in ((c, w) for c in args.cache for w in args.workers):
                rate, per_batch, mosaic_share = measure(
                    dataset_images, task, workers, settings, args.batches, args.warmup,
                    args.input_size, args.batch_size, cache, work_dir / "cache",
                )  # fmt: skip
                print(
                    f"{name:<10} {task:<8} {cache:<5} {workers:>7} {rate:>9.1f} "
                    f"{per_batch:>8.3f} {mosaic_share:>7.0%}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
