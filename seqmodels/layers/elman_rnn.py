"""``ElmanRNN``: a drop-in replacement for ``torch.nn.RNN``, composed of seqmodels' layers."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from seqmodels.cells.elman import ElmanCell, check_nonlinearity
from seqmodels.cells.init import check_init
from seqmodels.core.errors import ArgumentTypeError, ShapeError, check_bool, check_positive_int
from seqmodels.layers.base import check_backend
from seqmodels.layers.bidirectional import Bidirectional
from seqmodels.layers.recurrent import Recurrent
from seqmodels.layers.stacked import Stacked, check_dropout

#: ``bptt`` is at least as fast as ``autograd`` on every benchmark configuration (README).
DEFAULT_BACKEND = "bptt"

#: nn.RNN's flat parameter names: ``weight_ih_l0``, ``bias_hh_l1_reverse``, ...
_FLAT_NAME = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
_PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class ElmanRNN(Stacked):
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
      time (:class:`~seqmodels.kernels.ElmanBPTT`), faster than ``nn.RNN`` on CPU;
      ``"autograd"`` runs the generic layer machinery (:func:`scan` over an Elman step,
      differentiated by autograd). Both support double backward, ``torch.func`` transforms
      and autocast. Same parameters, same results; it can be changed at any time
      (``rnn.backend = "autograd"``).
    * ``init``: ``"default"`` (nn.RNN's U(-1/sqrt(H), 1/sqrt(H))), ``"xavier"``,
      ``"kaiming"``, ``"orthogonal"`` or ``"identity"`` (IRNN), see :mod:`seqmodels.cells.init`.

    It is a thin composition of the public layers: a :class:`Stacked` of
    :class:`Recurrent` (or :class:`Bidirectional` pairs of them) over :class:`ElmanCell`\ s.
    Parameters are named exactly as in ``nn.RNN`` (``weight_ih_l0``, ``weight_hh_l0``,
    ``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse``, ``..._l1`` ...), so ``load_state_dict``
    works both ways (the cells own them; ``named_parameters``, ``state_dict``,
    ``load_state_dict`` and attribute access translate the names); see also
    :meth:`from_torch` and :meth:`to_torch`. Errors match ``nn.RNN``'s exception types
    (``docs/elman_rnn_contract.md``).

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
        proj_size: int | None = None,
    ) -> None:
        # Checked in nn.RNN's order, with its exception types (see docs/elman_rnn_contract.md).
        if proj_size is not None:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        check_nonlinearity(nonlinearity)
        check_dropout(dropout)
        check_bool("bias", bias)
        check_bool("batch_first", batch_first)
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        check_bool("bidirectional", bidirectional)
        check_backend(backend)
        check_init(init)
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=2,
            )
        directions = 2 if bidirectional else 1
        layers = []
        for layer in range(num_layers):
            size = input_size if layer == 0 else hidden_size * directions
            recurrent = [
                Recurrent(
                    ElmanCell(
                        size, hidden_size, bias, nonlinearity, init=init, device=device, dtype=dtype
                    ),
                    backend=backend,
                )
                for _ in range(directions)
            ]
            layers.append(Bidirectional(*recurrent) if bidirectional else recurrent[0])
        super().__init__(layers, dropout, batch_first=batch_first)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.nonlinearity = nonlinearity
        self.bias = bias
        self.bidirectional = bidirectional
        self.init = init
        self.proj_size = 0  # read by code written against nn.RNN
        self.register_state_dict_post_hook(_to_flat_names)
        self.register_load_state_dict_pre_hook(_from_flat_names)

    # --- nn.RNN's parameter names --------------------------------------------------------

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def cell(self, layer: int, direction: int = 0) -> ElmanCell:
        """The :class:`ElmanCell` of one layer and direction (1: backward)."""
        stack_layer = self.layers[layer]
        if self.bidirectional:
            stack_layer = stack_layer.sublayers()[direction]
        return stack_layer.cell

    @property
    def _flat_weights_names(self) -> list[str]:
        names = _PARAMETERS if self.bias else _PARAMETERS[:2]
        return [
            f"{name}_l{layer}" + ("_reverse" if direction else "")
            for layer in range(self.num_layers)
            for direction in range(self.num_directions)
            for name in names
        ]

    @property
    def _flat_weights(self) -> list[nn.Parameter]:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """Parameters grouped per layer and direction, as ``nn.RNN.all_weights``."""
        per = 4 if self.bias else 2
        flat = self._flat_weights
        return [flat[i : i + per] for i in range(0, len(flat), per)]

    def _composed_name(self, flat: str) -> str | None:
        """``weight_ih_l1_reverse`` -> ``layers.1.backward_layer.cell.weight_ih`` (or None)."""
        match = _FLAT_NAME.match(flat)
        if match is None:
            return None
        name, layer, reverse = match.group(1), int(match.group(2)), match.group(3) is not None
        if layer >= self.num_layers or (reverse and not self.bidirectional):
            return None
        if not self.bidirectional:
            return f"layers.{layer}.cell.{name}"
        return f"layers.{layer}.{'backward' if reverse else 'forward'}_layer.cell.{name}"

    def _flat_name(self, composed: str) -> str:
        """The inverse of :meth:`_composed_name`; other names are returned unchanged."""
        parts = composed.split(".")
        if len(parts) not in (4, 5) or parts[0] != "layers" or parts[-2] != "cell":
            return composed
        reverse = len(parts) == 5 and parts[2] == "backward_layer"
        return f"{parts[-1]}_l{parts[1]}" + ("_reverse" if reverse else "")

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            composed = self._composed_name(name) if "_modules" in self.__dict__ else None
            if composed is None:
                raise
            module_path, _, attr = composed.rpartition(".")
            return getattr(self.get_submodule(module_path), attr)

    def __setattr__(self, name: str, value) -> None:
        composed = (
            self._composed_name(name) if "layers" in self.__dict__.get("_modules", {}) else None
        )
        if composed is None:
            super().__setattr__(name, value)
        else:  # e.g. tying weights (rnn.bias_ih_l0_reverse = rnn.bias_ih_l0), functional_call
            module_path, _, attr = composed.rpartition(".")
            cell = self.get_submodule(module_path)
            if not isinstance(value, nn.Parameter) and attr in cell._parameters:
                del cell._parameters[attr]  # a plain tensor stands in (torch.func.functional_call)
            setattr(cell, attr, value)

    def __delattr__(self, name: str) -> None:
        composed = self._composed_name(name) if "layers" in self._modules else None
        if composed is None:
            super().__delattr__(name)
        else:
            module_path, _, attr = composed.rpartition(".")
            delattr(self.get_submodule(module_path), attr)

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Parameter]]:
        """As ``nn.RNN``: ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ..."""
        for name, param in super().named_parameters("", recurse, remove_duplicate):
            yield (f"{prefix}." if prefix else "") + self._flat_name(name), param

    # --- configuration -----------------------------------------------------------------

    def reset_parameters(self) -> None:
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                self.cell(layer, direction).reset_parameters()

    def flatten_parameters(self) -> None:
        """No-op, for code written against ``nn.RNN`` (there is no cuDNN weight buffer here)."""

    # --- forward -----------------------------------------------------------------------

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: Tensor | None = None,
        *,
        lengths: Sequence[int] | Tensor | None = None,
    ) -> tuple[Tensor | PackedSequence, Tensor]:
        data = input.data if isinstance(input, PackedSequence) else input
        if isinstance(data, Tensor):
            self._check_tensor("input", data)
        if isinstance(hx, Tensor):
            self._check_tensor("hx", hx)
        return super().forward(input, hx, lengths)

    def _check_tensor(self, name: str, tensor: Tensor) -> None:
        weight = self.cell(0).weight_ih
        autocast = torch.is_autocast_enabled(tensor.device.type)
        if tensor.dtype != weight.dtype and not autocast:
            # nn.RNN's message verbatim first (integer input included), then ours.
            raise ShapeError(
                f"RNN {name} dtype ({tensor.dtype}) does not match weight dtype "
                f"({weight.dtype}). Convert {name}: {name}.to({weight.dtype}), "
                f"or convert model: model.to({tensor.dtype}) ({name} dtype must match the "
                f"parameters: expected {weight.dtype}, got {tensor.dtype}"
                + (
                    ""
                    if tensor.is_floating_point()
                    else f"; {name} must be a floating-point tensor, got dtype {tensor.dtype}"
                )
                + ")"
            )
        if tensor.device != weight.device:
            # nn.RNN's wording: the input is checked against the parameters, hx against both.
            found = (
                f"found input tensor at {tensor.device} and parameter tensor at {weight.device}"
                if name == "input"
                else f"found hidden tensor at {tensor.device} and input and parameter tensors "
                f"at {weight.device}"
            )
            kind = "parameter" if name == "input" else "hidden"
            raise ShapeError(
                f"Input and {kind} tensors are not at the same device, {found} ({name} must be "
                f"on the parameters' device: expected {weight.device}, got {tensor.device})"
            )

    # --- conversion ----------------------------------------------------------------------

    @classmethod
    def from_torch(cls, rnn: nn.RNN, *, backend: str = DEFAULT_BACKEND) -> ElmanRNN:
        """An ElmanRNN with the configuration and (copied) weights of ``torch.nn.RNN`` ``rnn``."""
        if not isinstance(rnn, nn.RNN):
            raise ArgumentTypeError(f"from_torch expects a torch.nn.RNN, got {type(rnn).__name__}")
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
        weight = self.cell(0).weight_ih
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


def _to_flat_names(module: ElmanRNN, state_dict: dict, prefix: str, local_metadata) -> None:
    """state_dict post-hook: the cells' keys under nn.RNN's names, in nn.RNN's order."""
    items = list(state_dict.items())
    state_dict.clear()
    for key, value in items:
        if key.startswith(prefix):
            key = prefix + module._flat_name(key[len(prefix) :])
        state_dict[key] = value


def _from_flat_names(
    module: ElmanRNN,
    state_dict: dict,
    prefix: str,
    local_metadata,
    strict,
    missing,
    unexpected,
    errors,
) -> None:
    """load_state_dict pre-hook: nn.RNN's names to the cells' keys (composed keys load too)."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        composed = module._composed_name(key[len(prefix) :])
        if composed is not None:
            state_dict[prefix + composed] = state_dict.pop(key)
