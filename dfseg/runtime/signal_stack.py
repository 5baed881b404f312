"""A permanent alternate signal stack for the calling thread (Linux).

OpenVINO's CPU plugin gives the thread that creates it an alternate signal stack of its own, and
when the plugin is destroyed it restores the stack it found and unmaps its own. Two plugin
instances (two `ov.Core`s, such as the ones NNCF creates while quantizing) whose lifetimes do
not nest therefore leave the thread pointing at unmapped memory. CPython runs every Python
signal handler on the alternate stack (SA_ONSTACK), so the next signal, a Ctrl-C or the SIGCHLD
of a finished child process that torch's DataLoader listens for, kills the process with SIGSEGV.

dfseg keeps one `ov.Core` for the whole process (`openvino_core`) and, after work that creates
and drops other Cores, calls `install_signal_stack` so the thread points at memory that lives as
long as the process.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
import threading

STACK_BYTES = 64 * 1024
_stacks: dict[int, mmap.mmap] = {}  # thread id -> its stack, never freed


class _StackT(ctypes.Structure):
    _fields_ = [
        ("ss_sp", ctypes.c_void_p),
        ("ss_flags", ctypes.c_int),
        ("ss_size", ctypes.c_size_t),
    ]


def install_signal_stack() -> bool:
    """Give the calling thread an alternate signal stack that is never freed.

    Returns:
        True when installed; False where there is nothing to do (not Linux) or it failed.
    """
    if not sys.platform.startswith("linux"):
        return False
    thread = threading.get_ident()
    buffer = _stacks.get(thread)
    if buffer is None:
        buffer = _stacks[thread] = mmap.mmap(-1, STACK_BYTES)
    stack = _StackT(_address(buffer), 0, STACK_BYTES)
    return bool(ctypes.CDLL(None).sigaltstack(ctypes.byref(stack), None) == 0)


def current_signal_stack() -> tuple[int | None, int]:
    """(address, size) of the calling thread's alternate signal stack; (None, 0) when it has
    none or the platform does not say."""
    if not sys.platform.startswith("linux"):
        return None, 0
    stack = _StackT()
    if ctypes.CDLL(None).sigaltstack(None, ctypes.byref(stack)) != 0 or stack.ss_flags & 2:
        return None, 0  # 2: SS_DISABLE
    return stack.ss_sp, int(stack.ss_size)


def owned_signal_stack() -> int | None:
    """The address of the stack `install_signal_stack` gave the calling thread, if any."""
    buffer = _stacks.get(threading.get_ident())
    return None if buffer is None else _address(buffer)


def _address(buffer: mmap.mmap) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))
