"""Reading a `/predict` request: the body (raw image bytes or multipart), bounded in size, and
the image in it, bounded in pixels. Nothing is written to disk: multipart bodies are parsed in
memory, and no request names a file the server would open."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from email.parser import BytesParser
from email.policy import HTTP

import cv2
import numpy as np

MULTIPART = "multipart/form-data"
FILE_FIELDS = ("file", "image")


class RequestError(Exception):
    """A bad request: `status` (4xx) and a message for the JSON error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def read_body(stream: AsyncIterator[bytes], content_length: str | None, limit: int) -> bytes:
    """The whole body, refused (413) as soon as it is known to exceed `limit` bytes."""
    too_large = RequestError(413, f"request body over the limit of {limit} bytes")
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def image_bytes(body: bytes, content_type: str | None) -> bytes:
    """The image in a body: the body itself, or a multipart body's `file` (or `image`, or first
    file) part."""
    if content_type and content_type.lower().startswith(MULTIPART):
        body = _multipart_file(body, content_type)
    if not body:
        raise RequestError(400, "empty request body: send image bytes, or multipart with 'file'")
    return body


def _multipart_file(body: bytes, content_type: str) -> bytes:
    header = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    try:
        message = BytesParser(policy=HTTP).parsebytes(header + body)
        parts = list(message.iter_parts()) if message.is_multipart() else []
    except Exception:  # the stdlib parser on arbitrary bytes: any failure is a bad request
        parts = []
    files: dict[str, bytes] = {}
    for part in parts:
        name = part.get_param("name", header="content-disposition")
        if name in FILE_FIELDS or part.get_filename():
            payload = part.get_payload(decode=True)
            files.setdefault(str(name), payload if isinstance(payload, bytes) else b"")
    for name in FILE_FIELDS:
        if name in files:
            return files[name]
    if files:
        return next(iter(files.values()))
    raise RequestError(400, "multipart body without a file part: send the image as field 'file'")


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """[H, W, 3] uint8 BGR from encoded image bytes; an image over `max_pixels` gets 413 from
    its header alone (a small file can declare a huge image)."""
    size = _declared_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise RequestError(
            413, f"image of {size[0]}x{size[1]} pixels is over the limit of {max_pixels} pixels"
        )
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise RequestError(400, "the body is not a decodable image (JPEG, PNG, BMP, TIFF, WebP)")
    if image.shape[0] * image.shape[1] > max_pixels:
        raise RequestError(413, f"image over the limit of {max_pixels} pixels")
    return image


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header, without decoding (None: PIL does not know the format)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Image.DecompressionBombError:
        raise RequestError(413, "the image declares more pixels than the limit") from None
    except Exception:  # not a format PIL reads; OpenCV decides
        return None
