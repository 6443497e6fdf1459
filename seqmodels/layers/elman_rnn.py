"""``ElmanRNN``: a drop-in replacement for ``torch.nn.RNN`` built on seqmodels' machinery."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from seqmodels.cells.base import _check_positive_int
from seqmodels.cells.elman import check_nonlinearity
from seqmodels.init import check_init, init_elman_
from seqmodels.layers.bidirectional import run_bidirectional
from seqmodels.layers.elman_layer import DEFAULT_BACKEND, check_backend, run_elman
from seqmodels.layers.sequence import Lengths, prepare_input, restore_output
from seqmodels.layers.stacked import check_dropout, run_stacked


class ElmanRNN(nn.Module):
    r"""Multi-layer Elman RNN with ``torch.nn.RNN``'s constructor, parameters and forward.

    For each layer, each step, each direction:

    .. math::
        h_t = \mathrm{act}(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh})

    where ``x_t`` is the input for the first layer and the previous layer's output (with
    dropout, when training and ``dropout > 0``) for the others.

    Args (as ``nn.RNN``): ``input_size``, ``hidden_size``, ``num_layers=1``,
    ``nonlinearity="tanh"|"relu"``, ``bias=True``, ``batch_first=False``, ``dropout=0.0``,
    ``bidirectional=False``, ``device``, ``dtype``. Keyword-only extras:

    * ``backend``: ``"bptt"`` (the default) runs the hand-written back-propagation through
      time (:class:`~seqmodels.bptt.ElmanBPTT`), faster than ``nn.RNN`` on CPU;
      ``"autograd"`` runs the generic layer machinery (:func:`scan` over an Elman step,
      differentiated by autograd), which also supports double backward. Same parameters,
      same results; it can be changed at any time (``rnn.backend = "autograd"``).
    * ``init``: ``"default"`` (nn.RNN's U(-1/sqrt(H), 1/sqrt(H))), ``"xavier"``,
      ``"kaiming"``, ``"orthogonal"`` or ``"identity"`` (IRNN), see :mod:`seqmodels.init`.

    Parameters are named exactly as in ``nn.RNN`` (``weight_ih_l0``, ``weight_hh_l0``,
    ``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse``, ``..._l1`` ...), so ``load_state_dict``
    works both ways; see also :meth:`from_torch` and :meth:`to_torch`.

    Forward: ``rnn(input, h_0=None, *, lengths=None) -> (output, h_n)`` with ``input``
    ``(L, N, H_in)``, batch-first ``(N, L, H_in)``, unbatched ``(L, H_in)`` or a
    ``PackedSequence``; ``h_0`` ``(D * num_layers, N, H_out)`` (unbatched
    ``(D * num_layers, H_out)``); ``output`` ``(L, N, D * H_out)`` (or packed) and ``h_n``
    like ``h_0``. ``lengths`` (an extension) marks padding in a padded batch: the result
    equals running the same batch packed, except that padded outputs are zeros in place.

    Example::

        >>> import torch
        >>> from seqmodels import ElmanRNN
        >>> rnn = ElmanRNN(10, 20, num_layers=2, bidirectional=True, backend="bptt")
        >>> output, h_n = rnn(torch.randn(5, 3, 10))
        >>> output.shape, h_n.shape
        (torch.Size([5, 3, 40]), torch.Size([4, 3, 20]))
        >>> reference = torch.nn.RNN(10, 20, num_layers=2, bidirectional=True)
        >>> _ = reference.load_state_dict(rnn.state_dict())   # same names and shapes
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        backend: str = DEFAULT_BACKEND,
        init: str = "default",
    ) -> None:
        super().__init__()
        _check_positive_int("input_size", input_size)
        _check_positive_int("hidden_size", hidden_size)
        _check_positive_int("num_layers", num_layers)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.nonlinearity = check_nonlinearity(nonlinearity)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = check_dropout(dropout)
        self.bidirectional = bool(bidirectional)
        self.backend = backend
        self.init = check_init(init)
        if self.dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=2,
            )
        factory = {"device": device, "dtype": dtype}
        num_directions = 2 if bidirectional else 1
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * num_directions
            for direction in range(num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = {
                    "weight_ih": (hidden_size, layer_input),
                    "weight_hh": (hidden_size, hidden_size),
                }
                if self.bias:
                    shapes.update(bias_ih=(hidden_size,), bias_hh=(hidden_size,))
                for name, shape in shapes.items():
                    self.register_parameter(
                        name + suffix, nn.Parameter(torch.empty(shape, **factory))
                    )
                    self._flat_weights_names.append(name + suffix)
        self.reset_parameters()

    # --- configuration -----------------------------------------------------------------

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        self._backend = check_backend(value)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                init_elman_(*self._weights(layer, direction), self.init, self.nonlinearity)

    def flatten_parameters(self) -> None:
        """No-op, for code written against ``nn.RNN`` (there is no cuDNN weight buffer here)."""

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """Parameters grouped per layer and direction, as ``nn.RNN.all_weights``."""
        per = 4 if self.bias else 2
        flat = [getattr(self, name) for name in self._flat_weights_names]
        return [flat[i : i + per] for i in range(0, len(flat), per)]

    def _weights(
        self, layer: int, direction: int
    ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        bias_ih = getattr(self, "bias_ih" + suffix) if self.bias else None
        bias_hh = getattr(self, "bias_hh" + suffix) if self.bias else None
        return (
            getattr(self, "weight_ih" + suffix),
            getattr(self, "weight_hh" + suffix),
            bias_ih,
            bias_hh,
        )

    # --- forward -----------------------------------------------------------------------

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: Tensor | None = None,
        *,
        lengths: Sequence[int] | Tensor | None = None,
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        prep = prepare_input(input, lengths, self.batch_first, self.input_size)
        x = prep.x  # (T, N, H_in)
        self._check_tensor("input", x)
        slots = self.num_layers * self.num_directions
        if hx is None:
            hx = x.new_zeros(slots, prep.batch_size, self.hidden_size)
        else:
            expected = (
                (slots, self.hidden_size)
                if prep.unbatched
                else (slots, prep.batch_size, self.hidden_size)
            )
            if not isinstance(hx, Tensor) or tuple(hx.shape) != expected:
                got = tuple(hx.shape) if isinstance(hx, Tensor) else type(hx).__name__
                raise ValueError(f"Expected hidden size {expected}, got {got}")
            self._check_tensor("hx", hx)
            if prep.unbatched:
                hx = hx.unsqueeze(1)
        layer_fns = [self._layer_fn(layer) for layer in range(self.num_layers)]
        output, h_n = run_stacked(
            layer_fns,
            [self.num_directions] * self.num_layers,
            self.dropout,
            self.training,
            x,
            prep.lengths,
            hx,
        )
        if prep.unbatched:
            h_n = h_n.squeeze(1)
        return restore_output(output, prep), h_n

    def _check_tensor(self, name: str, tensor: Tensor) -> None:
        weight = self.weight_ih_l0
        if tensor.dtype != weight.dtype:
            raise ValueError(
                f"{name} dtype must match the parameters: "
                f"expected {weight.dtype}, got {tensor.dtype}"
            )
        if tensor.device != weight.device:
            raise ValueError(
                f"{name} must be on the parameters' device: "
                f"expected {weight.device}, got {tensor.device}"
            )

    def _layer_fn(self, layer: int):
        forward_fn = partial(self._run_direction, layer, 0)
        if not self.bidirectional:
            return forward_fn
        backward_fn = partial(self._run_direction, layer, 1)
        return partial(run_bidirectional, forward_fn, backward_fn, (1, 1))

    def _run_direction(
        self, layer: int, direction: int, x: Tensor, lengths: Lengths | None, state: Tensor
    ) -> tuple[Tensor, Tensor]:
        """One layer, one direction, on time-major ``x``; ``state`` is ``(1, N, H)``.

        Direction 1 walks time backwards (outputs stay aligned with ``x``): natively when
        there is no padding, by per-sequence reversal of input and output when there is.
        """
        weights = self._weights(layer, direction)
        output, h_n = run_elman(
            weights, self.nonlinearity, self._backend, x, lengths, state[0], direction == 1
        )
        return output, h_n.unsqueeze(0)

    # --- conversion ----------------------------------------------------------------------

    @classmethod
    def from_torch(cls, rnn: nn.RNN, *, backend: str = DEFAULT_BACKEND) -> ElmanRNN:
        """An ElmanRNN with the configuration and (copied) weights of ``torch.nn.RNN`` ``rnn``."""
        if not isinstance(rnn, nn.RNN):
            raise ValueError(f"from_torch expects a torch.nn.RNN, got {type(rnn).__name__}")
        weight = rnn.weight_ih_l0
        model = cls(
            rnn.input_size,
            rnn.hidden_size,
            rnn.num_layers,
            rnn.nonlinearity,
            rnn.bias,
            rnn.batch_first,
            float(rnn.dropout),
            rnn.bidirectional,
            device=weight.device,
            dtype=weight.dtype,
            backend=backend,
        )
        model.load_state_dict(rnn.state_dict())
        return model.train(rnn.training)

    def to_torch(self) -> nn.RNN:
        """A ``torch.nn.RNN`` with this module's configuration and (copied) weights."""
        weight = self.weight_ih_l0
        rnn = nn.RNN(
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.nonlinearity,
            self.bias,
            self.batch_first,
            self.dropout,
            self.bidirectional,
            device=weight.device,
            dtype=weight.dtype,
        )
        rnn.load_state_dict(self.state_dict())
        return rnn.train(self.training)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        s += f", backend={self.backend!r}"
        if self.init != "default":
            s += f", init={self.init!r}"
        return s
