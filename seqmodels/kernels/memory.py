"""Large fresh CPU buffers backed by 2 MiB pages, so that their first touch is cheap.

glibc's ``malloc`` maps every allocation of 32 MiB or more fresh from the kernel (32 MiB is
its largest dynamic mmap threshold) and unmaps it on free, so a buffer that size is
first-touched page by page on EVERY call: the LSTM's ``(T, N, 4H)`` gates at the benchmark's
B and E (52 MB) take 12,800 page faults of 4 KiB per training step, which costs several times
the same writes into a buffer already mapped. Advised with ``MADV_HUGEPAGE`` before that
first touch, the kernel backs the buffer's 2 MiB-aligned interior with huge pages: one fault
per 2 MiB instead of per 4 KiB. :func:`first_touch_ms` measures both on the machine at hand;
``seqmodels-bench cell=lstm`` reports the page faults per call
(docs/dev/performance.md, "Huge pages for large buffers").

Advice only: the contents never change, and where the kernel has no transparent huge pages
(or the OS is not Linux) nothing happens. Buffers below :data:`HUGE_PAGE_MIN_BYTES` come
from malloc's heap, usually already touched, and are left alone.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
import time

import torch
from torch import Tensor

#: Buffers at least this large are advised into huge pages: glibc's largest mmap threshold,
#: above which every allocation is a fresh mapping of its own.
HUGE_PAGE_MIN_BYTES = 32 << 20

_HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE = getattr(mmap, "MADV_HUGEPAGE", None)  # Linux only


def _load_madvise():
    if sys.platform != "linux" or _MADV_HUGEPAGE is None:
        return None
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    madvise.restype = ctypes.c_int
    return madvise


_madvise = _load_madvise()


def advise_huge_pages(buffer: Tensor) -> bool:
    """Ask the kernel to back ``buffer``'s 2 MiB-aligned interior with huge pages; call it
    before the buffer is first written. True if the advice was taken (the kernel may still
    fall back to small pages), False where it does not apply."""
    if _madvise is None or buffer.device.type != "cpu":
        return False
    begin = buffer.data_ptr()
    start = -(-begin // _HUGE_PAGE) * _HUGE_PAGE  # round up
    stop = (begin + buffer.nbytes) // _HUGE_PAGE * _HUGE_PAGE  # round down
    if stop <= start:
        return False
    return _madvise(start, stop - start, _MADV_HUGEPAGE) == 0


def fresh_buffer(like: Tensor, *shape: int) -> Tensor:
    """``like.new_empty(*shape)``, advised into huge pages when it is
    :data:`HUGE_PAGE_MIN_BYTES` or larger (a CPU buffer malloc maps fresh on every call)."""
    out = like.new_empty(*shape)
    if out.nbytes >= HUGE_PAGE_MIN_BYTES:
        advise_huge_pages(out)
    return out


def first_touch_ms(advise: bool, size: int = 52 << 20, rounds: int = 15) -> float:
    """Median ms to allocate and first write ``size`` bytes, with or without the advice."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        buffer = torch.empty(size // 4)
        if advise:
            advise_huge_pages(buffer)
        buffer.fill_(1.0)
        times.append(time.perf_counter() - start)
        del buffer
    return 1e3 * sorted(times)[rounds // 2]
