r"""The LSTM forward when nothing will be differentiated: cache-sized chunks, nothing saved.

The training forward (:func:`seqmodels.kernels.gated._lstm_inplace`) projects the inputs of
all steps into one fresh ``(T, N, 4H)`` buffer and keeps every cell state, because backward
needs both. Without backward neither is needed, and both cost: a fresh buffer of tens of MB
is first touched page by page, and by the time the step loop reads a step's gates the GEMM
that wrote them has long left the cache. Here the steps are taken in chunks whose gate
buffer is about :data:`CHUNK_BYTES`; each chunk's projection GEMM writes into the same
buffer the compiled step loop then reads, and cell states are kept only for the current
chunk (to read each sequence's final ``c`` at its last step). Memory no longer grows with
the sequence beyond the output itself.

Same maths and results as :class:`~seqmodels.kernels.gated.LSTMBPTT` (the same step loop);
only where intermediate values live differs. Used only for CPU float32/float64 with the
compiled loops available, no tensor requiring grad under grad mode, and no transform or
forward-mode dual; everything else takes the training path.

Reference (one chunk, ``reverse=False``)::

    gates[:k] = x[s:s+k] @ W_ih^T                     # (k, N, 4H), one GEMM
    for t in range(k):                                # compiled: ext.lstm_forward
        i, f, g, o = act(gates[t] + h @ W_hh^T + b)   # sigmoid, sigmoid, tanh, sigmoid
        c = f * c + i * g;  h = o * tanh(c)
        out[s+t], cells[t] = h, c
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.autograd import forward_ad

from seqmodels.kernels import compiled
from seqmodels.kernels.common import (
    any_wrapped,
    final_states,
    real_steps,
    steps_per_chunk,
    zero_padding,
)

#: Bytes of gate pre-activations per chunk: large enough that each chunk's projection GEMM
#: has rows enough to run at BLAS's best, small enough that the buffer is reused from the
#: heap instead of a fresh mapping of tens of MB first-touched page by page on every call.
#: Sizes compared with ``seqmodels-bench cell=lstm`` (docs/dev/performance.md).
CHUNK_BYTES = 8 << 20


def applies(tensors: Sequence[Tensor | None]) -> bool:
    """True when the inference path may run: no gradient of any kind will be asked for and
    the compiled loops take these tensors (CPU, one float dtype)."""
    present = [t for t in tensors if t is not None]
    if present[0].numel() == 0:  # no steps or no rows: the training path handles the edges
        return False
    if torch.is_grad_enabled() and any(t.requires_grad for t in present):
        return False
    if any_wrapped(*present) or any(forward_ad.unpack_dual(t).tangent is not None for t in present):
        return False
    return compiled.usable(*present) is not None


def lstm_inference(
    x: Tensor,
    h0: Tensor,
    c0: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None,
    bias_hh: Tensor | None,
    lengths: Tensor | None = None,
    reverse: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """One LSTM layer, one direction, without autograd: ``(output, h_n, c_n)``.

    Shapes as :class:`~seqmodels.kernels.gated.LSTMBPTT`: ``x`` ``(T, N, I)``, ``h0``/``c0``
    ``(N, H)``; ``output`` ``(T, N, H)`` (zeros at padded steps), ``h_n``/``c_n`` ``(N, H)``
    after each sequence's last real step. Call only where :func:`applies` says so.
    """
    ext = compiled.usable(x, h0, c0, weight_ih, weight_hh)
    steps, batch, features = x.shape
    hidden = weight_hh.shape[1]
    real = real_steps(lengths, steps)
    x = zero_padding(x, real).contiguous()
    bias = None if bias_ih is None else bias_ih + bias_hh
    w_hh_t = weight_hh.t().contiguous()  # (H, 4H) row-major, as the step loop reads it
    packed = ext.pack_step_weight(w_hh_t, batch)  # once for every chunk; None: no MKL steps
    out = x.new_empty(steps, batch, hidden)  # (T, N, H)
    chunk = steps_per_chunk(CHUNK_BYTES, steps, batch * 4 * hidden * x.element_size())
    gates = x.new_empty(chunk, batch, 4 * hidden)  # (k, N, 4H), reused by every chunk
    cells = x.new_empty(chunk, batch, hidden)  # (k, N, H)
    h, c = h0.contiguous(), c0.contiguous()
    last = None if lengths is None else lengths.to(x.device) - 1  # (N,)
    c_n = torch.empty_like(c) if last is not None else None
    starts = list(range(0, steps, chunk))
    for start in starts[::-1] if reverse else starts:
        stop = min(start + chunk, steps)
        k = stop - start
        g, cl = gates[:k], cells[:k]
        torch.mm(x[start:stop].view(k * batch, features), weight_ih.t(), out=g.view(-1, 4 * hidden))
        ext.lstm_forward(g, h, c, w_hh_t, bias, out[start:stop], cl, reverse, packed)
        edge = 0 if reverse else k - 1  # the chunk's last processed step
        h, c = out[start + edge], cl[edge].clone()  # the cell buffer is overwritten next
        if last is not None:  # sequences that end inside this chunk: their c_n is here
            rows = torch.nonzero((last >= start) & (last < stop)).flatten()
            c_n[rows] = cl[last[rows] - start, rows]
    h_n = final_states(out, lengths, reverse)
    return zero_padding(out, real), h_n, c if c_n is None else c_n
