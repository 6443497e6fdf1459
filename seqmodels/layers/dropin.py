"""The drop-in contract shared by :class:`ElmanRNN`, :class:`LSTM` and :class:`GRU`.

A drop-in is a :class:`Stacked` of :class:`Recurrent` layers (or :class:`Bidirectional`
pairs of them) over one cell per layer and direction. Each parameter is registered twice,
as one object: on its cell (``layers.0.cell.weight_hh``), which computes with it, and on the
drop-in under torch's flat name (``weight_hh_l0``), which is authoritative. So
``named_parameters``, ``parameters`` and ``state_dict`` read as ``nn.RNN``'s (the cells'
duplicates are dropped), torch idioms that need a module's own parameter work on the flat
names (``torch.nn.utils.parametrize``, ``weight_norm``, ``spectral_norm``, weight tying by
assignment, ``torch.func.functional_call``, ``torch.export``), and before each call the
cells are given the drop-in's current weights (:meth:`DropInRNN._cells_see_flat_weights`: a
parametrization's value, or a parameter that replaced the one a cell holds). State dicts
load both ways with ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` and from the cells' paths. The
name translation lives in methods, not registered hooks: a hook is pickled with the module,
and ``torch.load(..., weights_only=True)`` of a whole model would then need the hook
function allowlisted, where ``nn.LSTM`` needs only its class.
Constructor arguments are checked in torch's order with torch's exception types
(``docs/elman_rnn_contract.md``).

Backends (:mod:`seqmodels.layers.backends`): ``"bptt"`` and ``"autograd"`` run the layers
(each :class:`Recurrent` runs its cell's hand-written BPTT or the step loop);
``"torch"`` runs the whole stack as one call of torch's own fused kernel
(``torch._VF.lstm``, ...) over the cells' parameters, exactly as ``nn.LSTM.forward`` does;
``"auto"``, the default, picks one per call (:func:`resolve_backend`). The one seam between
the two is :meth:`DropInRNN.forward_padded`.

Regularisers (keyword-only, :class:`Recurrent`'s, given to every layer and direction):
``weight_dropout`` (DropConnect on each ``W_hh``, one mask per call, training only),
``recurrent_dropout`` (one ``(N, H)`` mask per call on the ``h_{t-1}`` the recurrent
projection reads, training only) and ``zoneout`` (on ``h``; per-step masks in training,
``h_t = p h_{t-1} + (1 - p) h~_t`` in eval). ``backend="torch"`` runs weight drop (the
dropped ``W_hh`` go into torch's flat weight list for the call) but not the other two, which
act inside the recurrence: it refuses ``recurrent_dropout > 0`` and ``zoneout > 0`` at
construction and when set later, and ``"auto"`` leaves torch's kernel for a call in which
either acts. :meth:`DropInRNN.to_torch` returns the plain torch module: torch's modules have
no such options.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import _VF, Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from seqmodels.cells.base import RecurrentCell
from seqmodels.core.errors import ArgumentTypeError, ShapeError, check_bool, check_positive_int
from seqmodels.core.padding import Lengths
from seqmodels.core.state import State, map_state
from seqmodels.kernels import kernel_for, traceable
from seqmodels.layers import backends
from seqmodels.layers.backends import (
    CallTraits,
    Resolution,
    check_backend,
    compiling,
    cpu_capability,
    cpu_vendor,
    exporting,
    resolve_backend,
)
from seqmodels.layers.bidirectional import Bidirectional
from seqmodels.layers.formats import prepare_input
from seqmodels.layers.recurrent import Recurrent, check_regulariser
from seqmodels.layers.stacked import Stacked, check_dropout

#: Every drop-in resolves its path per call (:func:`~seqmodels.layers.backends.resolve_backend`).
DEFAULT_BACKEND = "auto"

#: torch's flat parameter names: ``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``...
_FLAT_NAME = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")
_PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
#: an LSTM's projection (``proj_size > 0``), after the four above as in ``nn.LSTM``
_PROJECTION = "weight_hr"
#: constructor arguments shared with torch's modules, and their defaults (for repr)
_SHARED = {
    "num_layers": 1,
    "bias": True,
    "batch_first": False,
    "dropout": 0.0,
    "bidirectional": False,
}
#: seqmodels' regularisers (:class:`Recurrent`'s), keyword-only, off by default
REGULARISERS = ("weight_dropout", "recurrent_dropout", "zoneout")
#: cuDNN's warning when the weights of a call are not its flattened buffer (weight drop)
_NOT_CONTIGUOUS = ".*not part of single contiguous chunk of memory.*"


class _LayerOption:
    """A regulariser of every :class:`Recurrent` inside a drop-in, read and set as one
    attribute (``lstm.zoneout = 0.0`` changes every layer and direction)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, module: DropInRNN | None, owner: type | None = None):
        if module is None:
            return self
        return getattr(next(module.recurrent_layers()), self.name)

    def __set__(self, module: DropInRNN, value: float) -> None:
        layers = list(module.recurrent_layers())
        value = check_regulariser(self.name, value, layers[0].cell)
        if module.backend == "torch" and (
            why := module._why_not_torch_kernel(**{self.name: value})
        ):
            raise ValueError(f"backend='torch' cannot run this module: {why}")
        for layer in layers:
            setattr(layer, self.name, value)


class DropInRNN(Stacked):
    """Base of the drop-ins; a subclass names its ``torch_class`` and builds its cells.

    Subclasses call ``super().__init__(cell_class, cell_kwargs, ...)`` after checking their
    own arguments (as torch does first); each cell is
    ``cell_class(layer_input_size, hidden_size, bias, **cell_kwargs)``. With ``proj_size``
    ``P > 0`` (the LSTM's projections) the cells' ``h`` is ``P`` wide: layer ``k > 0`` takes
    ``D * P`` features, and each cell's ``weight_hr`` is registered as ``weight_hr_l{k}``.
    """

    torch_class: type[nn.Module]
    #: the cell class whose recurrence torch's kernel computes (``backend="torch"``)
    cell_type: type[RecurrentCell]
    #: extra constructor arguments shared with ``torch_class`` -> default (for repr, conversion)
    extra_arguments: dict[str, object] = {}
    weight_dropout = _LayerOption()
    recurrent_dropout = _LayerOption()
    zoneout = _LayerOption()

    def __init__(
        self,
        cell_class: type[RecurrentCell],
        cell_kwargs: dict[str, object],
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        *,
        backend: str,
        proj_size: int = 0,
        weight_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> None:
        check_dropout(dropout)
        check_bool("bias", bias)
        check_bool("batch_first", batch_first)
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        if proj_size < 0:
            raise ValueError(
                "proj_size should be a positive integer or zero to disable projections"
            )
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        check_bool("bidirectional", bidirectional)
        check_backend(backend)
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=3,
            )

        def make_cell(size: int) -> RecurrentCell:
            return cell_class(size, hidden_size, bias, **cell_kwargs)

        # Each Recurrent checks its options (a ValueError naming the option and its value).
        options = {
            "backend": _layer_backend(backend),
            "weight_dropout": weight_dropout,
            "recurrent_dropout": recurrent_dropout,
            "zoneout": zoneout,
        }
        layers = []
        output_width = proj_size if proj_size else hidden_size  # of h, each direction
        for layer in range(num_layers):
            size = input_size if layer == 0 else output_width * (2 if bidirectional else 1)
            if bidirectional:
                forward, backward = make_cell(size), make_cell(size)
                layers.append(
                    Bidirectional(Recurrent(forward, **options), Recurrent(backward, **options))
                )
            else:
                layers.append(Recurrent(make_cell(size), **options))
        super().__init__(layers, dropout, batch_first=batch_first)
        self.proj_size = proj_size  # before the flat names: _flat_slots reads it
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.bidirectional = bidirectional
        for name, cell, attr in self._flat_slots():  # the cells' parameters, torch's names
            self._parameters[name] = cell._parameters[attr]
        self.backend = backend
        self.flatten_parameters()  # as nn.RNN: built on a GPU, one cuDNN buffer from the start

    # --- backends ------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        """The requested backend: ``"auto"``, ``"bptt"``, ``"autograd"`` or ``"torch"``."""
        return self.__dict__["_backend"]

    @backend.setter
    def backend(self, value: str) -> None:
        check_backend(value)
        if value == "torch" and (why := self._why_not_torch_kernel()) is not None:
            raise ValueError(f"backend='torch' cannot run this module: {why}")
        for layer in self.sublayers():
            layer.backend = _layer_backend(value)
        self.__dict__["_backend"] = value

    def torch_mode(self) -> str:
        """torch's name of this module's recurrence: ``"RNN_TANH"``, ``"LSTM"``, ..."""
        return self.torch_class.__name__

    def _why_not_torch(self) -> str | None:
        """Why torch's kernel cannot compute this module, or None when it can."""
        first = getattr(self.cell(0), "nonlinearity", None)
        for index, cell in enumerate(self.cells()):
            if type(cell) is not self.cell_type:
                return (
                    f"layer {index // self.num_directions} runs a {type(cell).__name__}, not "
                    f"the {self.cell_type.__name__} torch's {self.torch_class.__name__} "
                    "kernel computes"
                )
            if getattr(cell, "nonlinearity", None) != first:
                return "its layers use different nonlinearities"
        return None

    def recurrent_layers(self) -> Iterator[Recurrent]:
        """Every :class:`Recurrent` layer, in the cells' order (:meth:`cells`)."""
        for layer in self.layers:
            yield from layer.sublayers() if isinstance(layer, Bidirectional) else (layer,)

    def _why_not_torch_kernel(self, **options: float) -> str | None:
        """Why ``backend="torch"`` is refused: :meth:`_why_not_torch`, or a regulariser that
        torch's kernel cannot apply (``options`` override the module's values)."""
        return self._why_not_torch() or self._regulariser_outside_torch(True, **options)

    def _regulariser_outside_torch(self, training: bool, **options: float) -> str | None:
        """Which regulariser acts inside the recurrence, where torch's fused kernel cannot
        apply it, in a call in ``training`` mode (or None): ``zoneout > 0`` acts in every
        call, ``recurrent_dropout > 0`` in training. Weight drop runs on torch's kernel."""
        values = {name: options.get(name, getattr(self, name)) for name in REGULARISERS}
        if values["zoneout"] > 0:
            return (
                f"zoneout={values['zoneout']} mixes h_(t-1) into every step's h "
                "(in training and eval), inside the recurrence that torch's fused kernel runs "
                "whole; run backend='bptt' or 'autograd'"
            )
        if training and values["recurrent_dropout"] > 0:
            return (
                f"recurrent_dropout={values['recurrent_dropout']} masks the h_(t-1) that each "
                "training step's recurrent projection reads, inside the recurrence that "
                "torch's fused kernel runs whole; run backend='bptt' or 'autograd'"
            )
        return None

    def _call_traits(self, x: Tensor, padded: bool = False) -> CallTraits:
        why = self._why_not_torch() or self._regulariser_outside_torch(self.training)
        return CallTraits(
            requested=self.backend,
            torch_mode=None if why else self.torch_mode(),
            why_not_torch=why,
            has_kernel=all(kernel_for(cell) is not None for cell in self.cells()),
            device_type=x.device.type,
            dtype=x.dtype,
            batch_size=x.shape[1] if x.dim() == 3 else 1,
            cpu_capability=cpu_capability(),
            hidden_size=self.hidden_size,
            vendor=cpu_vendor() if x.device.type == "cpu" else "",
            needs_grad=torch.is_grad_enabled()
            and (x.requires_grad or any(p.requires_grad for p in self.parameters())),
            deterministic=torch.are_deterministic_algorithms_enabled(),
            dropout_active=self.training and self.dropout > 0 and self.num_layers > 1,
            exporting=exporting(),
            compiling=compiling(),
            traceable=all(traceable(cell) for cell in self.cells()),
            padded=padded,
        )

    def resolution(
        self, input: Tensor | PackedSequence, lengths: Sequence[int] | Tensor | None = None
    ) -> Resolution:
        """The path a call on ``input`` takes, and why (:func:`resolve_backend`; with
        :data:`seqmodels.layers.backends.benchmark` on, the timed choice)."""
        prep = prepare_input(input, lengths, self.batch_first, self.input_size)
        return self._resolve(prep.x, prep.lengths, None)

    def _resolve(self, x: Tensor, lengths: Lengths | None, state: State | None) -> Resolution:
        """The resolution of a call on ``x`` ``(T, N, F)``, timed when benchmarking."""
        call = self._call_traits(x, padded=lengths is not None)
        resolution = resolve_backend(call)
        if not (
            backends.benchmark
            and call.requested == "auto"
            and call.device_type == "cpu"
            and call.torch_mode is not None
            and call.has_kernel
            and not call.exporting
        ):
            return resolution
        key = (
            type(self).__name__,
            call.torch_mode,
            self.input_size,
            self.hidden_size,
            self.proj_size,
            self.num_layers,
            self.bidirectional,
            self.bias,
            tuple(x.shape),
            x.dtype,
            lengths is not None,
            call.needs_grad,
            call.dropout_active,
            self.training and self.weight_dropout > 0,  # weight drop masks W_hh per call
            torch.get_num_threads(),
        )
        paths = {
            "torch": lambda: self._forward_torch(x, lengths, state),
            "bptt": lambda: self._forward_layers(x, lengths, state),
        }
        leaves = [t for t in (x, *self._flat_weights) if t.requires_grad]
        return backends.benchmarked(key, paths, leaves if call.needs_grad else [])

    def resolved_backend(
        self, input: Tensor | PackedSequence, lengths: Sequence[int] | Tensor | None = None
    ) -> str:
        """Which path a call on ``input`` takes: ``"torch"``, ``"bptt"`` or ``"autograd"``."""
        return self.resolution(input, lengths).backend

    # --- torch's parameter names --------------------------------------------------------

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def cell(self, layer: int, direction: int = 0) -> RecurrentCell:
        """The cell of one layer and direction (1: backward)."""
        stack_layer = self.layers[layer]
        if self.bidirectional:
            stack_layer = stack_layer.sublayers()[direction]
        return stack_layer.cell

    def cells(self) -> Iterator[RecurrentCell]:
        """Every cell, layer by layer, the forward direction first (torch's weight order)."""
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                yield self.cell(layer, direction)

    def _flat_slots(self) -> Iterator[tuple[str, RecurrentCell, str]]:
        """``(flat name, cell, the cell's attribute)`` for every weight, in torch's order:
        ``("weight_ih_l0", <cell 0>, "weight_ih")``, ... No name is parsed, so the per-call
        paths (:meth:`_link_cells`, :meth:`_cells_see_flat_weights`) walk it cheaply."""
        attrs = _PARAMETERS if self.bias else _PARAMETERS[:2]
        if self.proj_size:
            attrs = (*attrs, _PROJECTION)
        for index, cell in enumerate(self.cells()):
            layer, direction = divmod(index, self.num_directions)
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            for attr in attrs:
                yield attr + suffix, cell, attr

    @property
    def _flat_weights_names(self) -> list[str]:
        return [name for name, _, _ in self._flat_slots()]

    @property
    def _flat_weights(self) -> list[nn.Parameter]:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """Parameters grouped per layer and direction, as ``nn.RNN.all_weights``."""
        per = self._weights_per_cell()
        flat = self._flat_weights
        return [flat[i : i + per] for i in range(0, len(flat), per)]

    def _weights_per_cell(self) -> int:
        """Flat weights per layer and direction: 4 (2 without biases), plus ``weight_hr``."""
        return (4 if self.bias else 2) + (1 if self.proj_size else 0)

    def _composed_name(self, flat: str) -> str | None:
        """``weight_ih_l1_reverse`` -> ``layers.1.backward_layer.cell.weight_ih`` (or None)."""
        match = _FLAT_NAME.match(flat)
        if match is None:
            return None
        name, layer, reverse = match.group(1), int(match.group(2)), match.group(3) is not None
        if layer >= self.num_layers or (reverse and not self.bidirectional):
            return None
        if name == _PROJECTION and not self.proj_size:
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

    def _cell_attribute(self, flat: str) -> tuple[RecurrentCell, str]:
        """``weight_hh_l1_reverse`` -> (the cell of layer 1, backward; ``"weight_hh"``)."""
        module_path, _, attr = self._composed_name(flat).rpartition(".")
        return self.get_submodule(module_path), attr

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            composed = self._composed_name(name) if "_modules" in self.__dict__ else None
            if composed is None:
                raise
            cell, attr = self._cell_attribute(name)
            return getattr(cell, attr)

    def __setattr__(self, name: str, value) -> None:
        composed = (
            self._composed_name(name) if "layers" in self.__dict__.get("_modules", {}) else None
        )
        if composed is None:
            super().__setattr__(name, value)
            return
        # A flat name: here and on the cell alike. A Parameter (weight tying, restoring after
        # functional_call) is registered on both; a plain tensor (torch.func.functional_call)
        # stands in on both for the call.
        cell, attr = self._cell_attribute(name)
        for module, key in ((self, name), (cell, attr)):
            if not isinstance(value, nn.Parameter) and key in module._parameters:
                del module._parameters[key]
            nn.Module.__setattr__(module, key, value)

    def __delattr__(self, name: str) -> None:
        composed = self._composed_name(name) if "layers" in self._modules else None
        if composed is None:
            super().__delattr__(name)
            return
        # Here and on the cell: torch.nn.utils.parametrize deletes the parameter before it
        # installs the parametrization, whose value the cells then get per call.
        cell, attr = self._cell_attribute(name)
        if name in self._parameters or name in self.__dict__:
            super().__delattr__(name)
        if attr in cell._parameters or attr in cell.__dict__:
            delattr(cell, attr)

    def _link_cells(self) -> None:
        """Link into each cell the parameter registered here under its flat name, where
        something registered it here without ``__setattr__`` (``remove_parametrizations``,
        ``load_state_dict(assign=True)``, a conversion that made new objects). Normally
        each cell already holds that very object and nothing happens."""
        for name, cell, attr in self._flat_slots():
            param = self._parameters.get(name)
            if param is None:
                continue
            if attr not in cell.__dict__ and cell._parameters.get(attr) is not param:
                cell._parameters[attr] = param

    @contextlib.contextmanager
    def _cells_see_flat_weights(self) -> Iterator[None]:
        """For one call on the layers: every cell computes with the drop-in's weight of its
        flat name (:meth:`_link_cells`); a parametrized weight's value is computed once and
        set on its cell for the call, so its gradient reaches
        ``parametrizations.<name>.original`` as on ``nn.LSTM``."""
        self._link_cells()
        injected = []
        for name, cell, attr in self._flat_slots():
            if name not in self._parameters and parametrize.is_parametrized(self, name):
                cell.__dict__[attr] = getattr(self, name)
                injected.append((cell, attr))
        try:
            yield
        finally:
            for cell, attr in injected:
                cell.__dict__.pop(attr, None)

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """As ``nn.Module.state_dict``: this module's keys under torch's flat names, in
        torch's order (``weight_ih_l0``, ``weight_hh_l0``, ...), the cells' duplicates of
        them folded in."""
        state = super().state_dict(
            *args, destination=destination, prefix=prefix, keep_vars=keep_vars
        )
        items = list(state.items())
        state.clear()
        for key, value in items:
            if key.startswith(prefix):
                key = prefix + self._flat_name(key[len(prefix) :])
            state[key] = value
        return state

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args) -> None:
        """Each weight under both of its names before anything loads (the cells read their
        slice of ``state_dict`` after this): a state dict with torch's flat names and one
        with the cells' paths load alike, into the one object both names hold."""
        for name in self._flat_weights_names:
            flat, composed = prefix + name, prefix + self._composed_name(name)
            if flat in state_dict and composed not in state_dict:
                state_dict[composed] = state_dict[flat]
            elif composed in state_dict and flat not in state_dict:
                state_dict[flat] = state_dict[composed]
        super()._load_from_state_dict(state_dict, prefix, *args)

    # --- configuration -----------------------------------------------------------------

    def reset_parameters(self) -> None:
        for cell in self.cells():
            cell.reset_parameters()

    def flatten_parameters(self) -> None:
        """As ``nn.RNN.flatten_parameters``: on cuDNN, make every weight a view into one
        contiguous buffer in cuDNN's layout, so ``backend="torch"`` does not compact them on
        every call. The parameters stay the cells' own (their data moves); a no-op on other
        devices, for weights of mixed dtypes, and for tied weights (torch does the same)."""
        weights = self._flat_weights
        if not weights or not all(isinstance(w, Tensor) for w in weights):
            return
        first = weights[0]
        if any(
            w.dtype != first.dtype or not w.is_cuda or not torch.backends.cudnn.is_acceptable(w)
            for w in weights
        ):
            return
        if len({w.data_ptr() for w in weights}) != len(weights):
            return  # tied weights: cuDNN copies them per call, as for nn.RNN
        from torch.backends.cudnn import rnn as cudnn_rnn

        with torch.cuda.device_of(first), torch.no_grad():
            if torch._use_cudnn_rnn_flatten_weight():
                torch._cudnn_rnn_flatten_weight(
                    weights,
                    self._weights_per_cell(),
                    self.input_size,
                    cudnn_rnn.get_cudnn_mode(self.torch_mode()),
                    self.hidden_size,
                    self.proj_size,
                    self.num_layers,
                    self.batch_first,
                    bool(self.bidirectional),
                )

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.flatten_parameters()  # as nn.RNN: unpickled on a GPU, one cuDNN buffer again

    def _apply(self, fn, recurse: bool = True):
        result = super()._apply(fn, recurse)
        self._link_cells()  # a conversion may have made new objects
        self.flatten_parameters()  # as nn.RNN: after .cuda() / .to(), one cuDNN buffer again
        return result

    # --- forward -----------------------------------------------------------------------

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: State | None = None,
        lengths: Sequence[int] | Tensor | None = None,
    ) -> tuple[Tensor | PackedSequence, State]:
        """``(output, h_n)`` (``(output, (h_n, c_n))`` for the LSTM), as torch's module.

        ``lengths`` may also be passed by position: ``torch.onnx.export`` fills every
        parameter of ``forward`` positionally with its default.
        """
        if isinstance(hx, list):  # nn.LSTM indexes hx, so a list [h_0, c_0] works there too
            hx = tuple(hx)
        data = input.data if isinstance(input, PackedSequence) else input
        if isinstance(data, Tensor):
            name = self.torch_class.__name__
            if data is input and data.dim() not in (2, 3) and name != "RNN":
                # nn.LSTM / nn.GRU word it so (ElmanRNN keeps nn.RNN's wording, formats.py)
                raise ShapeError(
                    f"{name}: Expected input to be 2D or 3D, got {data.dim()}D instead "
                    f"(input must be 3-D or unbatched 2-D, got shape {tuple(data.shape)})"
                )
            self._check_tensor("input", data)
        for state in (hx,) if isinstance(hx, Tensor) else hx or ():
            if isinstance(state, Tensor):
                self._check_tensor("hx", state)
        return super().forward(input, hx, lengths)

    def forward_padded(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        """The seam between torch's fused kernel and the layers: one per call."""
        if self._resolve(x, lengths, state).backend == "torch":
            self._link_cells()
            return self._forward_torch(x, lengths, state)
        return self._forward_layers(x, lengths, state)

    def _forward_layers(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        with self._cells_see_flat_weights():
            return Stacked.forward_padded(self, x, lengths, state)

    def _forward_torch(
        self, x: Tensor, lengths: Lengths | None, state: State | None
    ) -> tuple[Tensor, State]:
        """``x`` ``(T, N, F)`` through torch's kernel, as ``nn.RNN.forward`` calls it.

        A padded batch runs packed (``enforce_sorted=False``), so padding never reaches a
        value; its outputs come back zero-padded to ``T``."""
        if state is None:
            state = self.initial_state(x.shape[1], like=x)
        weights = self._flat_weights
        dropped = self.training and self.weight_dropout > 0
        if dropped:  # weight drop: each W_hh masked for this call, in the cells' order
            weights = [
                F.dropout(w, self.weight_dropout, training=True) if attr == "weight_hh" else w
                for w, (_, _, attr) in zip(weights, self._flat_slots(), strict=True)
            ]
        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):  # every path computes in autocast's dtype
            dtype = torch.get_autocast_dtype(device_type)
            x = x.to(dtype)
            state = map_state(lambda s: s.to(dtype), state)
            weights = [w.to(dtype) for w in weights]
        if compiling() and self.torch_mode() == "LSTM":
            x = self._not_mkldnn_inference(x, weights)
        options = (self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        kernel = {
            "RNN_TANH": _VF.rnn_tanh,
            "RNN_RELU": _VF.rnn_relu,
            "LSTM": _VF.lstm,
            "GRU": _VF.gru,
        }[self.torch_mode()]
        with warnings.catch_warnings() if dropped else contextlib.nullcontext():
            if dropped:  # the masked weights cannot be cuDNN's flattened buffer
                warnings.filterwarnings("ignore", _NOT_CONTIGUOUS, UserWarning)
            return self._call_kernel(kernel, x, lengths, state, weights, options)

    @staticmethod
    def _not_mkldnn_inference(x: Tensor, weights: list[Tensor]) -> Tensor:
        """``x``, made to require grad where a weight does. Traced on the CPU, torch's LSTM
        decomposes into oneDNN's inference primitive whenever its input needs no gradient,
        even when its weights do, and that training graph then fails to run
        (pytorch/pytorch#158007); an input that requires grad takes the decomposition into
        differentiable steps. The term added is the sum of no elements: exactly zero."""
        if x.device.type != "cpu" or x.requires_grad or not torch.is_grad_enabled():
            return x
        if not any(w.requires_grad for w in weights):
            return x
        return x + weights[0].reshape(-1)[:0].sum()

    @staticmethod
    def _call_kernel(kernel, x, lengths, state, weights, options) -> tuple[Tensor, State]:
        """One call of torch's ``kernel``, as ``nn.RNN.forward`` makes it."""
        if lengths is None:
            output, *final = kernel(x, state, weights, *options, False)
        else:
            packed = pack_padded_sequence(x, lengths.values.cpu(), enforce_sorted=False)
            order, unorder = packed.sorted_indices, packed.unsorted_indices
            state = map_state(lambda s: s.index_select(1, order), state)  # nn.RNN's order
            data, *final = kernel(packed.data, packed.batch_sizes, state, weights, *options)
            packed_output = PackedSequence(data, packed.batch_sizes, order, unorder)
            output, _ = pad_packed_sequence(packed_output, total_length=x.shape[0])
            final = [s.index_select(1, unorder) for s in final]
        return output, (tuple(final) if isinstance(state, tuple) else final[0])

    def _check_tensor(self, name: str, tensor: Tensor) -> None:
        weight = self.cell(0).weight_ih
        # The device first: autocast is looked up per device type, and a device without
        # autocast (meta) would fail there with a message that names neither device.
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

    # --- conversion ----------------------------------------------------------------------

    def _arguments(self) -> dict[str, object]:
        """The constructor arguments shared with ``torch_class``, as this module has them."""
        names = [*_SHARED, *self.extra_arguments]
        return {"input_size": self.input_size, "hidden_size": self.hidden_size} | {
            name: getattr(self, name) for name in names
        }

    @classmethod
    def from_torch(
        cls,
        module: nn.Module,
        *,
        backend: str = DEFAULT_BACKEND,
        weight_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
    ) -> DropInRNN:
        """A drop-in with the configuration and (copied) weights of ``module``, and the
        regularisers given here (torch's modules have none)."""
        if type(module) is not cls.torch_class:
            raise ArgumentTypeError(
                f"from_torch expects a torch.nn.{cls.torch_class.__name__}, "
                f"got {type(module).__name__}"
            )
        names = ["input_size", "hidden_size", *_SHARED, *cls.extra_arguments]
        arguments = {name: getattr(module, name) for name in names}
        arguments["dropout"] = float(arguments["dropout"])
        weight = module.weight_ih_l0
        model = cls(
            **arguments,
            device=weight.device,
            dtype=weight.dtype,
            backend=backend,
            weight_dropout=weight_dropout,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
        )
        model.load_state_dict(module.state_dict())
        return model.train(module.training)

    def to_torch(self) -> nn.Module:
        """A ``torch_class`` module with this module's configuration and (copied) weights.

        torch's modules take no ``weight_dropout``, ``recurrent_dropout`` or ``zoneout``: the
        module returned is the plain one, without them (its eval-mode outputs equal this
        module's where ``zoneout`` is 0)."""
        weight = self.cell(0).weight_ih
        module = self.torch_class(**self._arguments(), device=weight.device, dtype=weight.dtype)
        module.load_state_dict(self.state_dict())
        return module.train(self.training)

    def extra_repr(self) -> str:
        parts = [f"{self.input_size}, {self.hidden_size}"]
        defaults = _SHARED | self.extra_arguments
        for name, default in defaults.items():
            value = getattr(self, name)
            if value != default:
                parts.append(f"{name}={value!r}")
        parts += [f"{name}={getattr(self, name)}" for name in REGULARISERS if getattr(self, name)]
        parts.append(f"backend={self.backend!r}")
        init = getattr(self, "init", "default")
        if init != "default":
            parts.append(f"init={init!r}")
        return ", ".join(parts)


def _layer_backend(backend: str) -> str:
    """What the layers inside a drop-in run when the drop-in does not call torch's kernel:
    ``bptt`` or ``autograd`` as requested, else each cell's fastest (``"auto"``)."""
    return backend if backend in ("bptt", "autograd") else "auto"
