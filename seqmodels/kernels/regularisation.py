"""What a regularised walk applies inside the recurrence, for one call of a layer.

Two regularisers act inside the time loop, so the engine (and the step loop) apply them:

* recurrent dropout (Gal & Ghahramani 2016): ``r_t = W_hh (m ⊙ h_{t-1}) + b_hh`` with one
  mask ``m`` ``(N, H)`` per sequence and call, the same at every step, scaled by 1/(1-p);
* zoneout on ``h`` (Krueger et al. 2017): ``h_t = d_t ⊙ h_{t-1} + (1 - d_t) ⊙ h̃_t``, where
  ``h̃_t`` is the step's own ``h``; in training ``d_t`` ``(N, H)`` is 1 with probability p at
  each step, in eval it is p itself.

The masks are drawn by the layer (:class:`~seqmodels.Recurrent`, with :func:`bernoulli`) and
passed in as constants, so backward and every recomputation see the same ones. Weight drop
(DropConnect on ``W_hh``) needs no help from the walk: the layer runs the step with a masked
weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seqmodels.kernels import compiled


def bernoulli(size: tuple[int, ...], p: float, like: Tensor, value: float = 1.0) -> Tensor:
    """A tensor of ``like``'s dtype and device and shape ``size`` holding ``value`` with
    probability ``p``, else 0; reproducible under ``torch.manual_seed``.

    On the CPU, where the compiled extension is built, each element is a counter-based hash
    of its index and one seed drawn from torch's generator (``csrc/bernoulli.cpp``): torch's
    ``bernoulli_`` draws from its Mersenne Twister one element at a time, and for zoneout's
    ``(T, N, H)`` that cost as much as IndRNN's whole walk (``seqmodels-bench cell=indrnn
    zoneout=0.1``). Elsewhere, for other dtypes, and inside ``torch.compile`` (which traces
    ``bernoulli_`` but not the extension), ``bernoulli_``.
    """
    ext = None if torch.compiler.is_compiling() else compiled.usable(like)
    if ext is None:
        mask = like.new_empty(size).bernoulli_(p)
        return mask if value == 1.0 else mask.mul_(value)
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    return ext.bernoulli_mask(size, p, seed, value, like)


@dataclass(frozen=True, eq=False)
class Regularisation:
    """``recurrent_mask`` ``(N, H)`` (already scaled by 1/(1-p)) or ``None``; ``keep``:
    zoneout's ``d``, ``(T, N, H)`` in time order (training) or the float p (eval), or
    ``None``."""

    recurrent_mask: Tensor | None = None
    keep: Tensor | float | None = None

    def recurrent_input(self, h: Tensor) -> Tensor:
        """``m ⊙ h_{t-1}``: what the recurrent projection reads."""
        mask = self.recurrent_mask
        return h if mask is None else h * mask.to(h.dtype)

    def keep_at(self, t: int) -> Tensor | float | None:
        """Zoneout's ``d_t`` at time index ``t``."""
        return self.keep[t] if isinstance(self.keep, Tensor) else self.keep

    def zoneout(self, t: int, new_h: Tensor, old_h: Tensor) -> Tensor:
        """``d_t ⊙ h_{t-1} + (1 - d_t) ⊙ h̃_t``."""
        keep = self.keep_at(t)
        if keep is None:
            return new_h
        return torch.lerp(new_h, old_h, keep.to(new_h.dtype) if isinstance(keep, Tensor) else keep)


def loop_inputs(
    regularisation: Regularisation | None, like: Tensor
) -> tuple[Tensor | None, Tensor | None]:
    """The masks as the compiled loops read them (``Regularised`` in ``csrc/loops_common.h``:
    the gated, Elman and IndRNN walks), in ``like``'s dtype, contiguous: recurrent dropout's
    ``m`` ``(N, H)`` and zoneout's ``d``, ``(T, N, H)`` in time order or ``(1, N, H)`` for one
    ``d`` at every step (eval's p); ``None`` for either that does not act."""
    if regularisation is None:
        return None, None
    mask, keep = regularisation.recurrent_mask, regularisation.keep
    if mask is not None:
        mask = mask.to(like.dtype).contiguous()
    if isinstance(keep, Tensor):
        keep = keep.to(like.dtype).contiguous()
    elif keep is not None:
        keep = like.new_full((1, *like.shape[-2:]), float(keep))
    return mask, keep
