"""Collate examples into padded, batch-first tensors with lengths.

An *example* is a dict of tensors for one sequence (see :mod:`seqmodels.data`):

* many-to-one:  ``{"inputs": (T,) long | (T, F) float, "targets": () long | () or (K,) float}``
* many-to-many: ``{"inputs": ..., "targets": (T,) long | (T,) or (T, K) float}``
* seq2seq:      ``{"source": (S,) long | (S, F) float, "target": (U,) long with BOS/EOS}``

plus optional ``"index"`` (int, position in its split) and ``"origin"``
(``(path, line)`` where it was read). :class:`PadCollate` pads with
:func:`torch.nn.utils.rnn.pad_sequence`, returns lengths, optionally sorts the batch
by decreasing length, and enforces ``max_length``: truncates when ``truncate=True``,
else raises a :class:`~seqmodels.data.errors.DataError` naming the example.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

from seqmodels.core import IGNORE_INDEX
from seqmodels.data.errors import DataError

KINDS = ("many_to_one", "many_to_many", "seq2seq")


def fit_length(
    seq: torch.Tensor,
    max_length: int | None,
    truncate: bool,
    *,
    index: int | None = None,
    origin: tuple[str, int | None] | None = None,
    what: str = "sequence",
) -> torch.Tensor:
    """Return ``seq`` cut to ``max_length`` steps, or raise if it is longer and not ``truncate``.

    The error names the example index and, when known, the file and line it came from.

    Example:
        >>> fit_length(torch.arange(5), 3, truncate=True).tolist()
        [0, 1, 2]
    """
    if max_length is None or seq.shape[0] <= max_length:
        return seq
    if truncate:
        return seq[:max_length]
    path, line = origin if origin is not None else (None, None)
    label = f"example {index}: " if index is not None else ""
    raise DataError(
        f"{label}{what} has {seq.shape[0]} steps, more than max_length={max_length}; "
        "expected at most max_length steps (set truncate=True to cut longer sequences)",
        path=path,
        line=line,
    )


def _pad(seqs: Sequence[torch.Tensor], value: float) -> torch.Tensor:
    return pad_sequence(list(seqs), batch_first=True, padding_value=value)


class PadCollate:
    """Collate function (picklable, so it works with worker processes).

    Args:
        kind: ``"many_to_one"``, ``"many_to_many"`` or ``"seq2seq"``.
        pad_id: padding value of long inputs/sources and of seq2seq targets.
        max_length: T_max for inputs (sources for seq2seq); ``None`` for no limit.
        truncate: cut sequences longer than ``max_length`` instead of raising.
        sort_by_length: order the batch by decreasing (source) length, e.g. for
            ``pack_padded_sequence(enforce_sorted=True)``; ``"index"`` keeps the order.
        max_target_length: limit of seq2seq targets (the cut keeps the final EOS).

    Example:
        >>> collate = PadCollate("many_to_many", pad_id=0)
        >>> batch = collate([
        ...     {"inputs": torch.tensor([4, 5]), "targets": torch.tensor([1, 2])},
        ...     {"inputs": torch.tensor([6]), "targets": torch.tensor([3])},
        ... ])
        >>> batch["inputs"].tolist(), batch["targets"].tolist(), batch["lengths"].tolist()
        ([[4, 5], [6, 0]], [[1, 2], [3, -100]], [2, 1])
    """

    def __init__(
        self,
        kind: str = "many_to_one",
        *,
        pad_id: int = 0,
        max_length: int | None = None,
        truncate: bool = False,
        sort_by_length: bool = False,
        max_target_length: int | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown collate kind {kind!r}; expected one of {KINDS}")
        self.kind = kind
        self.pad_id = pad_id
        self.max_length = max_length
        self.truncate = truncate
        self.sort_by_length = sort_by_length
        self.max_target_length = max_target_length

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("cannot collate an empty batch")
        examples = [self._fit(i, ex) for i, ex in enumerate(examples)]
        key = "source" if self.kind == "seq2seq" else "inputs"
        lengths = torch.tensor([ex[key].shape[0] for ex in examples], dtype=torch.long)  # (N,)
        if self.sort_by_length:
            order = torch.argsort(lengths, descending=True, stable=True).tolist()
            examples = [examples[i] for i in order]
            lengths = lengths[order]
        index = torch.tensor([int(ex.get("index", -1)) for ex in examples], dtype=torch.long)
        if self.kind == "seq2seq":
            return self._seq2seq(examples, lengths, index)
        seqs = [ex["inputs"] for ex in examples]
        inputs = _pad(seqs, self.pad_id if not seqs[0].is_floating_point() else 0.0)
        targets = [ex["targets"] for ex in examples]
        if self.kind == "many_to_one":
            target = torch.stack(targets)  # (N,) or (N, K)
        else:
            pad = 0.0 if targets[0].is_floating_point() else IGNORE_INDEX
            target = _pad(targets, pad)  # (N, T) or (N, T, K)
        return {"inputs": inputs, "lengths": lengths, "targets": target, "index": index}

    def _seq2seq(
        self, examples: list[dict[str, Any]], lengths: torch.Tensor, index: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        sources = [ex["source"] for ex in examples]
        targets = [ex["target"] for ex in examples]
        src_pad = 0.0 if sources[0].is_floating_point() else self.pad_id
        return {
            "source": _pad(sources, src_pad),  # (N, S) or (N, S, F)
            "source_lengths": lengths,  # (N,)
            "target": _pad(targets, self.pad_id),  # (N, U)
            "target_lengths": torch.tensor([t.shape[0] for t in targets], dtype=torch.long),
            "index": index,
        }

    def _fit(self, position: int, ex: dict[str, Any]) -> dict[str, Any]:
        index = ex.get("index", position)
        origin = ex.get("origin")
        if self.kind == "seq2seq":
            where = {"index": index, "origin": origin}
            src = fit_length(ex["source"], self.max_length, self.truncate, what="source", **where)
            tgt = ex["target"]
            if self.max_target_length is not None and tgt.shape[0] > self.max_target_length:
                if not self.truncate:
                    fit_length(tgt, self.max_target_length, False, what="target", **where)
                tgt = torch.cat([tgt[: self.max_target_length - 1], tgt[-1:]])
            if src is ex["source"] and tgt is ex["target"]:
                return ex
            return {**ex, "source": src, "target": tgt}
        inputs = fit_length(
            ex["inputs"], self.max_length, self.truncate, index=index, origin=origin
        )
        if inputs is ex["inputs"]:
            return ex
        out = {**ex, "inputs": inputs}
        if self.kind == "many_to_many":
            out["targets"] = ex["targets"][: inputs.shape[0]]
        return out
