"""Run a recurrent module one time step at a time and catch ‖∂L/∂h_t‖ during backward.

Why stepping: the textbook quantity is the *total* derivative of the loss with respect to
the hidden state at step t, which collects every path from h_t to the loss (through the
output at t and through h_{t+1}, h_{t+2}, ...). A fused module (``torch.nn.RNN``'s kernel,
``ElmanRNN``'s hand-written BPTT) never exposes h_t as a tensor of the autograd graph, and a
hook on its stacked output only sees the direct part ``∂L/∂y_t``. Calling the *same module*
once per step, each call returning ``(y_t, h_t)``, makes every h_t a graph tensor; tensor
hooks on ``y_t`` and ``h_t`` then receive the two halves of the total derivative, whose sum
(for the top layer, whose output is its hidden state) is exactly ``∂L/∂h_t``. The parameter
gradients are those of the fused module up to float rounding, so a diagnostic training step
is still a real training step.

Supported: any unidirectional module with ``nn.RNN``'s calling convention
``module(input, hx) -> (output, h_n)`` (``torch.nn.RNN``/``GRU``/``LSTM``, ``ElmanRNN`` with
either backend, seqmodels' ``Recurrent``/``Stacked`` layers), on padded tensors (with
``lengths=`` as tasks call seqmodels' layers: stepped as the equivalent packed batch) or a
``PackedSequence``. A bidirectional module cannot be stepped (its backward direction needs
the whole future), so it is refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqmodels.core import State, map_state


def _top_hidden(state: State) -> Tensor:
    """The top layer's hidden state ``(N, H)`` of an ``(L, N, H)`` state (LSTM: of ``h``)."""
    h = state[0] if isinstance(state, tuple) else state
    return h[-1]


def check_steppable(module: nn.Module) -> None:
    """Raise a clear error for modules whose h_t cannot be exposed by stepping."""
    if getattr(module, "bidirectional", False):
        raise ValueError(
            f"gradient diagnostics need a unidirectional encoder, got a bidirectional "
            f"{type(module).__name__}: its backward direction at step t depends on every later "
            "input, so h_t cannot be exposed one step at a time. Run the diagnostics with "
            "bidirectional=false."
        )
    if getattr(module, "proj_size", 0):
        raise ValueError("gradient diagnostics do not support LSTMs with proj_size > 0")


class HiddenGradientProbe:
    """Collects, during one backward pass, the gradient halves that make ``∂L/∂h_t``.

    ``watch(t, y_t, h_t)`` is called by :func:`stepped_forward` for every step; after
    ``loss.backward()``, :meth:`norms` returns ``‖∂L/∂h_t‖`` (Frobenius norm over the batch
    rows active at step t and the hidden units of the top layer) for t = 0 .. T-1.

    Example::

        >>> import torch
        >>> rnn = torch.nn.RNN(3, 5)
        >>> probe = HiddenGradientProbe()
        >>> out, h_n = stepped_forward(rnn, torch.randn(7, 2, 3), None, probe)
        >>> out[-1].sum().backward()       # the loss sees only the last step directly
        >>> norms = probe.norms()
        >>> norms.shape, bool(norms[-1] > 0), bool(norms[0] > 0)
        (torch.Size([7]), True, True)
    """

    def __init__(self) -> None:
        self.steps = 0
        self._state: dict[int, Tensor] = {}
        self._output: dict[int, Tensor] = {}

    def watch(self, t: int, output_t: Tensor, state_t: State) -> None:
        self.steps = max(self.steps, t + 1)
        h = state_t[0] if isinstance(state_t, tuple) else state_t
        if h.requires_grad:
            h.register_hook(lambda g, t=t: self._store(self._state, t, g, top=True))
        if output_t.requires_grad:
            output_t.register_hook(lambda g, t=t: self._store(self._output, t, g))

    @staticmethod
    def _store(where: dict[int, Tensor], t: int, grad: Tensor | None, top: bool = False) -> None:
        # A fused kernel returns (output, h_n) from one autograd node (cuDNN's RNN does): when
        # the loss uses only one of them, the node still runs and hands the hook of the other
        # an undefined gradient, None in Python. It is a zero gradient: record nothing.
        if grad is None:
            return
        # A tensor used in several places may receive its gradient once, summed by autograd;
        # accumulate anyway so a second call (e.g. retain_graph) adds rather than replaces.
        grad = grad.detach()[-1] if top else grad.detach()
        where[t] = grad if t not in where else where[t] + grad

    def norms(self) -> Tensor:
        """``‖∂L/∂h_t‖`` per step (float64 on the CPU); 0 where no gradient reached h_t."""
        out = torch.zeros(self.steps, dtype=torch.float64)
        for t in range(self.steps):
            g_state, g_out = self._state.get(t), self._output.get(t)
            if g_state is None and g_out is None:
                continue
            if g_state is None:
                total = g_out
            elif g_out is None or g_out.shape != g_state.shape:
                total = g_state
            else:
                total = g_state + g_out  # the two halves of the total derivative
            out[t] = float(torch.linalg.vector_norm(total.double()))
        return out


def stepped_forward(
    module: nn.Module,
    input: Tensor | PackedSequence,
    hx: State | None,
    probe: HiddenGradientProbe,
    call: Callable[..., Any] | None = None,
) -> tuple[Tensor | PackedSequence, State]:
    """``module(input, hx)`` computed one time step at a time, every step watched by ``probe``.

    Returns what ``module(input, hx)`` returns (same layout, packed in -> packed out, final
    state in the caller's batch order). ``call`` is the module's unpatched forward (default
    ``module`` itself), used when this function *is* the module's forward.
    """
    check_steppable(module)
    call = module if call is None else call
    batch_first = bool(getattr(module, "batch_first", False))
    time_dim = 1 if batch_first else 0
    packed = isinstance(input, PackedSequence)
    if packed:
        sizes = input.batch_sizes.tolist()
        chunks = list(input.data.split(sizes))  # step t: the first sizes[t] sorted rows
        if hx is not None and input.sorted_indices is not None:
            hx = map_state(lambda h: h.index_select(1, input.sorted_indices), hx)
    else:
        if input.dim() != 3:
            raise ValueError(
                f"stepped_forward expects batched input (3-D or packed), got {input.dim()}-D"
            )
        chunks = list(input.unbind(time_dim))
        sizes = [input.shape[1 - time_dim]] * len(chunks)
    state = hx
    outputs = []
    for t, (x_t, rows) in enumerate(zip(chunks, sizes, strict=True)):
        s_in = None if state is None else map_state(lambda s, r=rows: s[:, :r], state)
        y_t, s_new = call(x_t.unsqueeze(time_dim), s_in)
        y_t = y_t.squeeze(time_dim)  # (rows, H_out)
        probe.watch(t, y_t, s_new)
        if state is not None and rows < _top_hidden(state).shape[0]:
            # Rows past `rows` have ended (packed input is sorted by length): keep their state.
            s_new = _cat(s_new, state, rows)
        state = s_new
        outputs.append(y_t)
    if packed:
        output = input._replace(data=torch.cat(outputs, 0))
        if input.unsorted_indices is not None:
            state = map_state(lambda h: h.index_select(1, input.unsorted_indices), state)
        return output, state
    return torch.stack(outputs, time_dim), state


def _stepped_padded(
    module: nn.Module,
    input: Tensor,
    hx: State | None,
    lengths: Tensor | list[int],
    probe: HiddenGradientProbe,
    call: Callable[..., Any],
) -> tuple[Tensor, State]:
    """A padded batch with ``lengths=`` (how tasks call seqmodels' layers), stepped as the
    equivalent ``PackedSequence``: padded outputs are zeros and the final state is each
    sequence's state after its own last step, as the layer itself returns them."""
    batch_first = bool(getattr(module, "batch_first", False))
    lengths = torch.as_tensor(lengths).detach().cpu()
    packed = pack_padded_sequence(input, lengths, batch_first=batch_first, enforce_sorted=False)
    out, state = stepped_forward(module, packed, hx, probe, call=call)
    total = input.shape[1 if batch_first else 0]
    output, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=total)
    return output, state


def _cat(new: State, old: State, rows: int) -> State:
    return map_state(lambda n, o: torch.cat([n, o[:, rows:]], 1), new, old)


class SteppedModule:
    """Context manager: while open, ``module``'s forward runs stepped and feeds ``probe``.

    Patching the instance's ``forward`` (not swapping the module) keeps parameters,
    parents and the optimiser untouched; closing restores the class's forward.

    Example::

        >>> import torch
        >>> from seqmodels import ElmanRNN
        >>> rnn = ElmanRNN(3, 5, backend="bptt")
        >>> probe = HiddenGradientProbe()
        >>> with SteppedModule(rnn, probe):
        ...     out, _ = rnn(torch.randn(6, 2, 3))
        >>> out[-1].sum().backward()
        >>> probe.norms().shape
        torch.Size([6])
    """

    def __init__(self, module: nn.Module, probe: HiddenGradientProbe) -> None:
        check_steppable(module)
        self.module, self.probe = module, probe

    def __enter__(self) -> SteppedModule:
        original = type(self.module).forward.__get__(self.module)
        probe, module = self.probe, self.module

        def forward(input, hx=None, lengths=None, **kwargs):
            if kwargs:
                raise ValueError(
                    "stepped diagnostics support forward(input, hx, lengths=) only, "
                    f"got {sorted(kwargs)}"
                )
            if lengths is None:
                return stepped_forward(module, input, hx, probe, call=original)
            return _stepped_padded(module, input, hx, lengths, probe, original)

        self.module.forward = forward
        return self

    def __exit__(self, *exc: object) -> None:
        self.module.__dict__.pop("forward", None)
