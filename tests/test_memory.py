"""Large fresh buffers are advised into huge pages (seqmodels/kernels/memory.py), and the
layers whose buffers are that large still compute exactly what torch's modules compute."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import seqmodels
from seqmodels.kernels import memory

MIB = 1 << 20
HUGE = 2 * MIB


@pytest.fixture
def advice(monkeypatch):
    """Records every (start, length) the kernels advise, passing it on to the real call."""
    calls: list[tuple[int, int]] = []
    real = memory._madvise

    def record(start, length, flag):
        calls.append((start, length))
        return real(start, length, flag) if real is not None else 0

    monkeypatch.setattr(memory, "_madvise", record)
    return calls


def test_fresh_buffer_is_an_uninitialised_tensor_like_its_model(advice):
    like = torch.zeros(3, dtype=torch.float64)
    small = memory.fresh_buffer(like, 4, 5)
    assert small.shape == (4, 5) and small.dtype == torch.float64 and small.is_contiguous()
    assert advice == []  # below HUGE_PAGE_MIN_BYTES: from malloc's heap, left alone


def test_only_the_aligned_interior_of_a_large_buffer_is_advised(advice):
    big = memory.fresh_buffer(torch.zeros(1), memory.HUGE_PAGE_MIN_BYTES // 4 + 7)
    assert len(advice) == 1
    start, length = advice[0]
    begin, end = big.data_ptr(), big.data_ptr() + big.nbytes
    assert start % HUGE == 0 and length % HUGE == 0 and length > 0
    assert begin <= start and start + length <= end  # never a page the buffer does not own
    assert start - begin < HUGE and end - (start + length) < HUGE  # and all whole ones it does
    big.fill_(2.0)  # advice changes no content
    assert big.min().item() == big.max().item() == 2.0


@pytest.mark.skipif(
    memory._madvise is None or not Path("/sys/kernel/mm/transparent_hugepage").exists(),
    reason="no madvise or no transparent huge pages in this kernel",
)
def test_the_kernel_takes_the_advice():
    assert memory.advise_huge_pages(torch.empty(memory.HUGE_PAGE_MIN_BYTES // 4))


def _gate_bytes(gates: int, steps: int, batch: int, hidden: int) -> int:
    return steps * batch * gates * hidden * 4


@pytest.mark.parametrize(
    ("name", "gates", "hidden"), [("LSTM", 4, 256), ("GRU", 3, 344)], ids=["lstm", "gru"]
)
def test_layers_with_huge_page_buffers_match_torch(advice, name, gates, hidden):
    """Gates of >= 32 MiB (the benchmark's B and E are 52 MB): parity with nn.LSTM / nn.GRU
    in outputs, final states and every gradient, with the buffers advised on the way."""
    steps, batch, features = 64, 128, 16
    assert _gate_bytes(gates, steps, batch, hidden) >= memory.HUGE_PAGE_MIN_BYTES
    torch.manual_seed(0)
    ref = getattr(torch.nn, name)(features, hidden)
    ours = getattr(seqmodels, name).from_torch(ref, backend="bptt")
    x = torch.randn(steps, batch, features)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, state_ref = ref(x_ref)
    out, state = ours(x_ours)
    weights = torch.linspace(-1, 1, hidden)
    for o, s in ((out_ref, state_ref), (out, state)):
        states = s if isinstance(s, tuple) else (s,)
        ((o * weights).sum() + sum((t**2).sum() for t in states)).backward()
    assert any(length >= 8 * HUGE for _, length in advice)  # the gates buffer was advised
    torch.testing.assert_close(out, out_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(state, state_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-4, atol=1e-5)
    for (n, p), (_, q) in zip(ours.named_parameters(), ref.named_parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-3, msg=n)
