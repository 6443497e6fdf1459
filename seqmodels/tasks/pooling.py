"""Pool an encoder's per-step outputs into one vector per sequence, over real steps only."""

from __future__ import annotations

import torch
from torch import Tensor

from seqmodels.core import length_mask

POOLINGS = ("last", "mean", "max")


def pool(
    outputs: Tensor, lengths: Tensor, mode: str = "last", split: tuple[int, ...] | None = None
) -> Tensor:
    """Pool ``outputs`` ``(N, T, H)`` over each sequence's real steps -> ``(N, H)``.

    * ``"last"``: the state after each sequence's own last real step. For a bidirectional
      encoder (``split=(H_fwd, H_bwd)``, its ``direction_sizes``; backward features last)
      the backward direction's last state is at step 0, so those features are taken there.
    * ``"mean"``: the average over real steps; ``"max"``: the element-wise maximum.

    Example::

        >>> import torch
        >>> out = torch.arange(6.0).view(1, 3, 2)        # (N=1, T=3, H=2)
        >>> pool(out, torch.tensor([2]), "last").tolist()
        [[2.0, 3.0]]
        >>> pool(out, torch.tensor([2]), "mean").tolist()
        [[1.0, 2.0]]
    """
    if mode not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {mode!r}")
    lengths = lengths.to(outputs.device)
    mask = length_mask(lengths, outputs.shape[1]).unsqueeze(-1)  # (N, T, 1)
    if mode == "mean":
        total = outputs.masked_fill(~mask, 0.0).sum(1)  # (N, H)
        return total / lengths.unsqueeze(1).to(outputs.dtype)
    if mode == "max":
        return outputs.masked_fill(~mask, float("-inf")).max(1).values  # (N, H)
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[-1])  # (N, 1, H)
    last = outputs.gather(1, index).squeeze(1)  # (N, H)
    if split is None or len(split) < 2:  # one direction: every feature ends at the last step
        return last
    forward_width = split[0]
    return torch.cat([last[:, :forward_width], outputs[:, 0, forward_width:]], dim=-1)
