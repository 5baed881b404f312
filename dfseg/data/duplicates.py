"""Exact and near-duplicate images: content hashes and thumbnail similarity, grouped.

A near-duplicate is the same picture saved again: re-encoded, resized, brightened, slightly
cropped, or a neighbouring video frame. Each image is reduced to a 16x16 grey thumbnail,
centred and scaled to unit length, so the dot product of two thumbnails is their Pearson
correlation: copies score above 0.99 (a 2% crop about 0.98), distinct photos of one scene rarely
above 0.85. Pairs at or above `min_similarity` are near-duplicates, and groups are the connected
components. Images without structure (a thumbnail's spread under `FEATURELESS_STD` grey levels:
blank frames, flat backgrounds) have no perceptual identity and match only exactly. Exact
duplicates (same bytes) are found by SHA-1 of the file.

Perceptual bit hashes (pHash, dHash) were measured first and dropped: on smooth gradients their
bits sit at the median and flip under re-encoding (22 of 64 bits for a half-size copy of a
gradient background), where the correlation stays at 0.999.

Speed: JPEGs are decoded at reduced scale straight from their DCT coefficients (PIL's `draft`,
down to the smallest size of at least 64 px), so hashing is mostly file reading; similarities
are one matrix product per block of rows.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

DEFAULT_MIN_SIMILARITY = 0.95
FEATURELESS_STD = 3.0  # grey levels over the 16x16 thumbnail
THUMBNAIL = 16
_DECODE_SIZE = 64
_BLOCK_ROWS = 1024


@dataclass(frozen=True)
class Fingerprint:
    """What duplicate search keeps of an image.

    Attributes:
        digest: SHA-1 of the file's bytes.
        thumbnail: [256] float32 unit-length centred 16x16 grey thumbnail, or None for a
            featureless image (matched only by `digest`).
    """

    digest: str
    thumbnail: np.ndarray | None


@dataclass(frozen=True)
class DuplicateGroup:
    """Images that are copies of one another.

    Attributes:
        indices: positions in the list of images fingerprinted, ascending.
        exact: True when every image has the same bytes.
        similarity: lowest thumbnail correlation of a pair linked in the group (1.0 if exact).
    """

    indices: tuple[int, ...]
    exact: bool
    similarity: float


def thumbnail_vector(image_gray: np.ndarray) -> np.ndarray | None:
    """[256] float32 centred unit-length thumbnail of a [H, W] uint8 grey image (None when it
    is featureless)."""
    small = cv2.resize(image_gray, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA)
    vector = small.astype(np.float32).ravel()
    vector -= vector.mean()
    if vector.std() < FEATURELESS_STD:
        return None
    return vector / np.linalg.norm(vector)


def fingerprint(path: Path) -> Fingerprint | None:
    """The image's `Fingerprint`, or None when it cannot be decoded."""
    data = path.read_bytes()
    digest = hashlib.sha1(data, usedforsecurity=False).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("L", (_DECODE_SIZE, _DECODE_SIZE))  # JPEG: decode at 1/2..1/8 scale
            gray = np.asarray(ImageOps.exif_transpose(image).convert("L"))
    except Exception:  # PIL raises many types for bad data: not an image to compare
        return None
    if gray.size == 0:
        return None
    return Fingerprint(digest, thumbnail_vector(gray))


def fingerprint_images(
    paths: Sequence[Path], progress: Callable[[int, int], None] | None = None
) -> list[Fingerprint | None]:
    """`fingerprint` of every path (threads: reading and decoding release the GIL)."""
    workers = max(1, min(8, os.cpu_count() or 1))
    results: list[Fingerprint | None] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, result in enumerate(pool.map(fingerprint, paths), start=1):
            results.append(result)
            if progress is not None and (done % 64 == 0 or done == len(paths)):
                progress(done, len(paths))
    return results


def similar_pairs(vectors: np.ndarray, min_similarity: float) -> np.ndarray:
    """(i, j, similarity) rows for every i < j with similarity >= min_similarity.

    Args:
        vectors: [N, D] float32 unit-length rows.

    Returns:
        [P, 3] float64.
    """
    found = []
    for start in range(0, len(vectors), _BLOCK_ROWS):
        block = vectors[start : start + _BLOCK_ROWS] @ vectors.T  # [B, N]
        rows, cols = np.nonzero(block >= min_similarity)
        upper = cols > rows + start
        rows, cols = rows[upper], cols[upper]
        found.append(np.stack([rows + start, cols, block[rows, cols]], axis=1))
    return np.concatenate(found) if found else np.zeros((0, 3))


def group_duplicates(
    fingerprints: Sequence[Fingerprint | None], min_similarity: float = DEFAULT_MIN_SIMILARITY
) -> list[DuplicateGroup]:
    """Groups of two or more images that are exact or near copies (undecodable images: none).

    Args:
        fingerprints: `fingerprint_images` output, one per image.
        min_similarity: lowest thumbnail correlation of near copies (above 1: exact copies only).

    Returns:
        Groups sorted by their first image.
    """
    parent = list(range(len(fingerprints)))
    lowest: dict[int, float] = {}

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    def link(a: int, b: int, similarity: float) -> None:
        ra, rb = sorted((root(a), root(b)))
        merged = min(lowest.get(ra, 1.0), lowest.pop(rb, 1.0) if rb != ra else 1.0, similarity)
        parent[rb] = ra
        lowest[ra] = merged

    first_of: dict[str, int] = {}
    for index, value in enumerate(fingerprints):
        if value is not None:
            if value.digest in first_of:
                link(first_of[value.digest], index, 1.0)
            else:
                first_of[value.digest] = index
    thumbnails = {
        index: value.thumbnail
        for index, value in enumerate(fingerprints)
        if value is not None and value.thumbnail is not None
    }
    if min_similarity <= 1.0 and len(thumbnails) > 1:
        order = list(thumbnails)
        vectors = np.stack([thumbnails[index] for index in order])  # [M, 256]
        for i, j, similarity in similar_pairs(vectors, min_similarity).tolist():
            link(order[int(i)], order[int(j)], min(1.0, similarity))
    members: dict[int, list[int]] = {}
    for index, value in enumerate(fingerprints):
        if value is not None:
            members.setdefault(root(index), []).append(index)
    groups = []
    for head, indices in sorted(members.items()):
        if len(indices) > 1:
            digests = {fingerprints[i].digest for i in indices}  # type: ignore[union-attr]
            similarity = round(lowest.get(head, 1.0), 4)
            groups.append(DuplicateGroup(tuple(indices), len(digests) == 1, similarity))
    return groups
