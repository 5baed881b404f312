"""Keeping native decoder warnings off the console.

libjpeg, libpng and OpenCV's image codecs write warnings such as "Premature end of JPEG file"
straight to file descriptor 2, from any thread and from DataLoader worker processes; a dataset
with a few truncated JPEGs (common in real data) then prints them every epoch. `dfseg` (the
console entry point) routes descriptor 2 through a pipe: lines that are decoder warnings go to
the `dfseg.decode` log (train.log for a training run) and are counted; everything else goes to
the real stderr unchanged. Python's own output (Rich progress, messages, tracebacks) is written
to the real stderr directly and never passes through the pipe. `dfseg check` names the files.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading

DECODER_WARNING = re.compile(
    rb"^(Corrupt JPEG data|Premature end of JPEG file|Invalid SOS parameters|"
    rb"Not a JPEG file|Warning: unknown JFIF revision|libpng warning|"
    rb"\[ ?WARN:\S* .*(imgcodecs|grfmt))"
)
logger = logging.getLogger("dfseg.decode")


class NativeStderrFilter:
    """Descriptor 2 through a filtering pipe (see the module docstring)."""

    def __init__(self) -> None:
        self.real_fd = -1
        self.warnings = 0
        self._reader: threading.Thread | None = None
        self._read_fd = -1

    def start(self) -> None:
        self.real_fd = os.dup(2)
        self._read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        # Python writes to the real stderr itself: no delay, no filtering of its output.
        encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
        sys.stderr = open(  # noqa: SIM115 (lives as long as the process)
            os.dup(self.real_fd), "w", buffering=1, encoding=encoding, errors="backslashreplace"
        )
        self._reader = threading.Thread(target=self._pump, name="native-stderr", daemon=True)
        self._reader.start()
        atexit.register(self.stop)

    def stop(self) -> None:
        """Put descriptor 2 back, let the reader drain the pipe, report the count."""
        if self._reader is None:
            return
        sys.stderr.flush()
        os.dup2(self.real_fd, 2)  # the pipe's last writer in this process is gone now
        self._reader.join(timeout=2.0)
        self._reader = None
        if self.warnings:
            os.write(
                self.real_fd,
                (
                    f"note: the image decoders reported {self.warnings} warning(s) about "
                    "truncated or corrupt image data (logged; `dfseg check` names the files)\n"
                ).encode(),
            )

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._read_fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._route(line + b"\n")
        if pending:
            self._route(pending)
        os.close(self._read_fd)

    def _route(self, line: bytes) -> None:
        if DECODER_WARNING.match(line):
            self.warnings += 1
            logger.info("image decoder: %s", line.decode("utf-8", "replace").rstrip())
        else:
            os.write(self.real_fd, line)


_ACTIVE: NativeStderrFilter | None = None


def install() -> NativeStderrFilter | None:
    """Route descriptor 2 through the filter once per process (the console entry point); None
    where descriptor 2 cannot be redirected."""
    global _ACTIVE
    if _ACTIVE is None:
        try:
            active = NativeStderrFilter()
            active.start()
        except OSError:
            return None
        _ACTIVE = active
    return _ACTIVE


def real_stderr_fd() -> int:
    """The descriptor of the terminal's stderr (for child processes that draw progress)."""
    return _ACTIVE.real_fd if _ACTIVE is not None else 2
