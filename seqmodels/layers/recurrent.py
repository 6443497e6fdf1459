"""Run one cell over time: the loop at the heart of every layer."""

from __future__ import annotations

import contextlib
import numbers
import warnings
from collections.abc import Callable, Iterator
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from seqmodels.cells.base import ProjectedCell, RecurrentCell
from seqmodels.core.padding import Lengths, reverse_padded
from seqmodels.core.state import State, map_state
from seqmodels.kernels import engine_kernel, kernel_for, takes_regularisation, traceable
from seqmodels.kernels.common import steps_per_chunk
from seqmodels.kernels.engine import swapped
from seqmodels.kernels.regularisation import Regularisation, bernoulli
from seqmodels.layers.backends import (
    CallTraits,
    check_backend,
    compiling,
    exporting,
    resolve_backend,
)
from seqmodels.layers.base import SequenceLayer


def scan(
    cell: RecurrentCell,
    x: Tensor,
    state: State,
    lengths: Lengths | None,
    reverse: bool = False,
    regularisation: Regularisation | None = None,
) -> tuple[Tensor, State]:
    """Run ``cell`` over ``x`` ``(T, N, F)`` from ``state``; returns ``(outputs (T, N, H), final)``.

    Reference semantics (what the fast path below computes)::

        for t in range(T):
            out_t, new = cell(x[t], state)
            state = new where t < lengths else state   # padding never changes a state
            outputs[t] = out_t where t < lengths else 0

    Padded input steps are replaced by zeros first (a select), so NaN or inf in padding
    reaches neither values nor gradients. When the cell has ``project_input``, the input
    half of every step is one large GEMM before the loop and each step only does the
    recurrent half (one GEMM per chunk of :data:`PROJECTION_CHUNK_BYTES` for long
    sequences). Time slices are taken with ``unbind`` rather than ``x[t]``: indexing a
    tensor that requires grad once per step makes autograd build a full-size zero gradient
    per step (cost ~T^2). Masking only starts at the first step where some sequence has ended.

    ``reverse=True`` (only without padding; :class:`Recurrent` reverses padded batches per
    sequence) walks time backwards; outputs stay aligned with ``x``'s time axis.

    ``regularisation`` (a :class:`~seqmodels.ProjectedCell` only): recurrent dropout's mask
    on the ``h_{t-1}`` the recurrent projection reads, and zoneout on each new ``h``
    (:mod:`seqmodels.kernels.regularisation`).
    """
    if reverse and lengths is not None:
        raise ValueError("scan(reverse=True) needs lengths=None; reverse padded batches first")
    steps = x.shape[0]
    mask = None if lengths is None else lengths.mask(steps).unsqueeze(-1)  # (T, N, 1)
    if mask is not None:
        x = torch.where(mask, x, 0.0)
    first_padded = steps if lengths is None else lengths.min
    outputs = []
    recurrent_mask = None if regularisation is None else regularisation.recurrent_mask
    zoneout = regularisation is not None and regularisation.keep is not None
    for t, (step, input_t) in enumerate(_step_inputs(cell, x, reverse, recurrent_mask)):
        output_t, new_state = step(input_t, state)
        if zoneout:  # some units keep h_{t-1}; the output is the state's h
            output_t = regularisation.zoneout(
                steps - 1 - t if reverse else t,
                output_t,
                state[0] if isinstance(state, tuple) else state,
            )
            new_state = (output_t, *new_state[1:]) if isinstance(new_state, tuple) else output_t
        if t >= first_padded:
            keep = mask[t]  # (N, 1): True where step t is real
            new_state = map_state(partial(_where, keep), new_state, state)
        state = new_state
        outputs.append(output_t)
    if reverse:
        outputs.reverse()
    output = torch.stack(outputs)  # (T, N, H)
    if mask is not None:
        output = output.masked_fill(~mask, 0.0)
    return output, state


#: Bytes of input projection per chunk of :func:`scan` (at four outputs per hidden unit, an
#: LSTM's): the projection of a long sequence is one GEMM per chunk, not one (T, N, 4H)
#: buffer that autograd then doubles with the stacked step gradients (page-faulted every step
#: at tens of MB: the benchmark's B and E then trained slower than projecting step by step).
PROJECTION_CHUNK_BYTES = 8 << 20


def _step_inputs(
    cell: RecurrentCell, x: Tensor, reverse: bool, recurrent_mask: Tensor | None = None
) -> Iterator[tuple[Callable, Tensor]]:
    """``(step, input_t)`` in processing order: the time slices of each chunk's
    ``cell.project_input`` with ``cell.projected_step()``, or, for a cell without that fast
    path, of ``x`` with ``cell.forward``."""
    steps, batch = x.shape[0], x.shape[1]
    width = 4 * cell.output_size * x.element_size()
    chunks = list(x.split(steps_per_chunk(PROJECTION_CHUNK_BYTES, steps, batch * width)))
    projected_step = None
    for chunk in chunks[::-1] if reverse else chunks:
        projected = cell.project_input(chunk)
        if projected is None:
            inputs, step = chunk.unbind(0), cell.forward
        else:
            if projected_step is None:  # once per sequence
                masked = recurrent_mask is not None
                projected_step = (
                    cell.projected_step(recurrent_mask) if masked else cell.projected_step()
                )
            inputs, step = projected.unbind(0), projected_step
        for input_t in inputs[::-1] if reverse else inputs:
            yield step, input_t


def _where(keep: Tensor, new: Tensor, old: Tensor) -> Tensor:
    return torch.where(keep, new, old)


class Recurrent(SequenceLayer):
    """Runs any :class:`~seqmodels.RecurrentCell` over a sequence, in one direction.

    Shapes: input ``(T, N, cell.input_size)`` (see :class:`SequenceLayer` for batch-first,
    unbatched, lengths and packed input); output ``(T, N, cell.output_size)``; state
    ``(1, N, H)`` in and out (one slot), or a tuple of those for tuple-state cells.

    ``backend``: ``"autograd"`` runs :func:`scan`, the step loop differentiated by autograd;
    ``"bptt"`` runs the cell's hand-written back-propagation through time
    (:func:`seqmodels.kernels.kernel_for`), for cells that have one (:class:`~seqmodels.ElmanCell`,
    :class:`~seqmodels.LSTMCell`, :class:`~seqmodels.GRUCell`, or a cell that brings its
    own); ``"auto"`` (the default) is ``"bptt"`` where the cell has one and ``"autograd"``
    otherwise. Same parameters, same results; change it at any time. (``"torch"``, torch's
    fused multi-layer kernels, is a backend of the drop-ins, :mod:`seqmodels.layers.backends`.)

    Example::

        >>> import torch
        >>> from seqmodels import ElmanCell, Recurrent
        >>> layer = Recurrent(ElmanCell(3, 8), batch_first=True)
        >>> x = torch.randn(4, 10, 3)                      # (N, T, F)
        >>> output, h_n = layer(x, lengths=[10, 7, 3, 1])
        >>> output.shape, h_n.shape
        (torch.Size([4, 10, 8]), torch.Size([1, 4, 8]))
        >>> bool(output[3, 1:].abs().sum() == 0)           # padded steps give zeros
        True
    """

    num_states = 1
    top_slots = (0,)

    def __init__(
        self,
        cell: RecurrentCell,
        *,
        backend: str = "auto",
        batch_first: bool = False,
        weight_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        super().__init__()
        self.cell = cell
        self.batch_first = batch_first
        self.input_size = cell.input_size
        self.output_size = cell.output_size
        self.direction_sizes = (cell.output_size,)
        self.backend = backend
        options = {
            "weight_dropout": weight_dropout,
            "recurrent_dropout": recurrent_dropout,
            "zoneout": zoneout,
        }
        for name, p in options.items():
            setattr(self, name, check_regulariser(name, p, cell))

    def regularisation(self, x: Tensor, h: Tensor) -> Regularisation | None:
        """This call's recurrent dropout mask and zoneout (``None`` when neither acts), drawn
        for ``x`` ``(T, N, F)`` and the state's ``h`` ``(N, H)``."""
        mask = keep = None
        if self.training and self.recurrent_dropout > 0:  # one mask per sequence and call
            p = self.recurrent_dropout
            mask = bernoulli(tuple(h.shape), 1 - p, h, value=1 / (1 - p))
        if self.zoneout > 0:  # training: d_t per step and unit; eval: p itself
            p = self.zoneout
            keep = bernoulli((x.shape[0], *h.shape), p, h) if self.training else p
        return None if mask is None and keep is None else Regularisation(mask, keep)

    def dropped_weights(self) -> dict[str, Tensor]:
        """Weight drop: ``{"weight_hh": W_hh * mask / (1 - p)}``, one mask per call, in
        training with ``weight_dropout > 0``; otherwise nothing to replace."""
        if not (self.training and self.weight_dropout > 0):
            return {}
        return {"weight_hh": F.dropout(self.cell.weight_hh, self.weight_dropout, training=True)}

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        check_backend(value)
        if value == "bptt" and kernel_for(self.cell) is None:
            raise ValueError(
                f"{type(self.cell).__name__} has no hand-written BPTT (no fused_sequence "
                "method and no kernel registered in seqmodels.kernels); use backend='autograd'"
            )
        if value == "torch":
            raise ValueError(
                "backend='torch' runs torch's fused multi-layer kernels and is a backend of the "
                "drop-ins (seqmodels.ElmanRNN, LSTM, GRU); a Recurrent layer takes 'auto', "
                "'bptt' or 'autograd'"
            )
        self._backend = value

    def resolved_backend(self, x: Tensor) -> str:
        """The path a call on ``x`` ``(T, N, F)`` takes: ``"bptt"`` or ``"autograd"``."""
        call = CallTraits(
            requested=self._backend,
            torch_mode=None,
            why_not_torch="torch's kernels run the drop-ins' whole stacks, not one layer",
            has_kernel=kernel_for(self.cell) is not None,
            device_type=x.device.type,
            dtype=x.dtype,
            batch_size=x.shape[1] if x.dim() == 3 else 1,
            cpu_capability="",
            exporting=exporting(),
            compiling=compiling(),
            traceable=traceable(self.cell),
        )
        return resolve_backend(call).backend

    def initial_state(self, batch_size: int, like: Tensor) -> State:
        return map_state(lambda s: s.unsqueeze(0), self.cell.initial_state(batch_size, like))

    def forward_padded(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        return self._run(x, lengths, state, reverse=False)

    def forward_padded_reversed(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        return self._run(x, lengths, state, reverse=True)

    def _run(
        self, x: Tensor, lengths: Lengths | None, state: State | None, reverse: bool
    ) -> tuple[Tensor, State]:
        if state is None:
            cell_state = self.cell.initial_state(x.shape[1], like=x)
        else:
            cell_state = map_state(lambda s: s[0], state)  # (1, N, H) -> (N, H)
        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):  # both backends compute in autocast's dtype
            dtype = torch.get_autocast_dtype(device_type)
            x, cell_state = x.to(dtype), map_state(lambda s: s.to(dtype), cell_state)
        # Without padding both paths walk time backwards natively; a padded batch is
        # reversed per sequence (each starts at its own last real step) and run forwards.
        flip = reverse and lengths is not None
        if flip:
            x = reverse_padded(x, lengths)
        native_reverse = reverse and not flip
        backend = self.resolved_backend(x)
        if backend == "autograd" and exporting():
            warnings.warn(
                f"exporting {type(self.cell).__name__} as its step loop unrolled over "
                f"T={x.shape[0]} steps: the exported graph takes that length only (the drop-ins "
                "ElmanRNN, LSTM and GRU export torch's kernel instead, with T dynamic)",
                stacklevel=2,
            )
        h = cell_state if isinstance(cell_state, Tensor) else cell_state[0]
        regularisation = self.regularisation(x, h)
        dropped = self.dropped_weights()
        with swapped(self.cell, dropped) if dropped else contextlib.nullcontext():
            if backend == "bptt":
                values = None if lengths is None else lengths.values
                # A fast form applies the masks only if it says so; else the engine does.
                kernel = kernel_for(self.cell)
                if regularisation is not None and not takes_regularisation(kernel):
                    kernel = engine_kernel
                args = () if regularisation is None else (regularisation,)
                output, final = kernel(self.cell, x, cell_state, values, native_reverse, *args)
            else:
                output, final = scan(
                    self.cell, x, cell_state, lengths, native_reverse, regularisation
                )
        if flip:
            output = reverse_padded(output, lengths)
        return output, map_state(lambda s: s.unsqueeze(0), final)  # (N, H) -> (1, N, H)

    def extra_repr(self) -> str:
        parts = [f"backend={self._backend!r}"] if self._backend != "auto" else []
        for name in ("weight_dropout", "recurrent_dropout", "zoneout"):
            if getattr(self, name):
                parts.append(f"{name}={getattr(self, name)}")
        return ", ".join(parts)


def check_regulariser(name: str, p: float, cell: RecurrentCell) -> float:
    """``p`` as a float in [0, 1), and a cell that can take the option when ``p > 0``."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
        raise ValueError(f"{name} must be a probability in [0, 1), got {p!r}")
    if p > 0 and not (isinstance(cell, ProjectedCell) and kernel_for(cell) is not None):
        raise ValueError(
            f"{name}={p}: {type(cell).__name__} is not a ProjectedCell run by the engine, so "
            "the layer cannot reach its recurrent weight or the h_{t-1} its recurrent "
            "projection reads; write the cell as a ProjectedCell (docs/cells.md)"
        )
    return float(p)
