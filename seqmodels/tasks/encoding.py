"""How a task talks to any encoder: input embedding, lengths, output widths and final states.

seqmodels' own layers (:class:`~seqmodels.ElmanRNN` on either backend, the generic
:class:`~seqmodels.Recurrent` / :class:`~seqmodels.Bidirectional` / :class:`~seqmodels.Stacked`
layers over any cell) take the padded batch with ``lengths=`` directly. Any other encoder
(``torch.nn.RNN`` / ``LSTM`` / ``GRU``, or a module following their convention) learns where
padding starts only from a ``PackedSequence``, so only those are packed. Either way padded
steps never reach the recurrence and final states are taken at each sequence's own last step.

What a task needs to know about an encoder it reads from two attributes that seqmodels'
layers expose, ``direction_sizes`` and ``top_slots``; for torch's modules they follow from
``hidden_size``, ``proj_size``, ``num_layers`` and ``bidirectional``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqmodels.core import State
from seqmodels.layers import ElmanRNN, SequenceLayer

INPUT_MODES = ("embedding", "onehot", "features")


def takes_lengths(encoder: nn.Module) -> bool:
    """True for seqmodels' layers, which run a padded batch given ``lengths=``.

    Everything else is called as ``torch.nn.RNN`` is, with a ``PackedSequence``.
    """
    return isinstance(encoder, (SequenceLayer, ElmanRNN))


def _torch_layout(encoder: nn.Module) -> tuple[int, int, int]:
    """``(width, directions, layers)`` from ``torch.nn.RNN``'s attributes."""
    hidden = getattr(encoder, "hidden_size", None)
    if not isinstance(hidden, int):
        raise ValueError(
            f"cannot tell the output size of encoder {type(encoder).__name__}: expected "
            "'direction_sizes' and 'top_slots' attributes (seqmodels layers) or nn.RNN's "
            f"'hidden_size', got hidden_size={hidden!r}"
        )
    width = getattr(encoder, "proj_size", 0) or hidden  # nn.LSTM with projections
    directions = 2 if getattr(encoder, "bidirectional", False) else 1
    return width, directions, int(getattr(encoder, "num_layers", 1))


def encoder_direction_sizes(encoder: nn.Module) -> tuple[int, ...]:
    """Widths of the top layer's output parts in concatenation order: ``(H,)`` or ``(H_f, H_b)``."""
    sizes = getattr(encoder, "direction_sizes", None)
    if sizes is not None:
        return tuple(sizes)
    width, directions, _ = _torch_layout(encoder)
    return (width,) * directions


def encoder_top_slots(encoder: nn.Module) -> tuple[int, ...]:
    """Indices on the final state's slot axis that belong to the top layer, in output order."""
    slots = getattr(encoder, "top_slots", None)
    if slots is not None:
        return tuple(slots)
    _, directions, layers = _torch_layout(encoder)
    return tuple(range((layers - 1) * directions, layers * directions))  # nn.RNN's h_n order


def encoder_output_size(encoder: nn.Module) -> int:
    """Features per step of an encoder's output: the sum of its direction sizes."""
    return sum(encoder_direction_sizes(encoder))


def top_layer_state(final: State, top_slots: tuple[int, ...]) -> Tensor:
    """The top layer's hidden states side by side: ``(S, N, H)`` -> ``(N, len(top_slots) * H)``.

    For a tuple state (LSTM-like ``(h, c)``) the first element, the hidden state, is used.
    """
    h = final[0] if isinstance(final, tuple) else final
    top = h[list(top_slots)]  # (D, N, H)
    return top.transpose(0, 1).reshape(h.shape[1], -1)  # (N, D * H)


def run_encoder(
    encoder: nn.Module, inputs: Tensor, lengths: Tensor, state: State | None = None
) -> tuple[Tensor, State]:
    """Run ``encoder`` on a padded batch-first ``inputs`` ``(N, T, F)`` with real ``lengths``.

    Returns the padded output ``(N, T, H_out)`` (zeros at padded steps) and the final state,
    taken at each sequence's own last real step, in nn.RNN's layout ``(S, N, H)``.
    """
    batch_first = bool(getattr(encoder, "batch_first", False))
    if takes_lengths(encoder):
        x = inputs if batch_first else inputs.transpose(0, 1)  # the encoder's own layout
        out, final = encoder(x, state, lengths=lengths)
        return (out if batch_first else out.transpose(0, 1)), final
    # pack_padded_sequence needs the lengths on the CPU; the packed data stays on its device.
    packed = pack_padded_sequence(
        inputs, lengths.detach().cpu(), batch_first=True, enforce_sorted=False
    )
    out, final = encoder(packed) if state is None else encoder(packed, state)
    output, _ = pad_packed_sequence(out, batch_first=True, total_length=inputs.shape[1])
    return output, final  # (N, T, H_out), (S, N, H)


class InputLayer(nn.Module):
    """Turns a batch's ``inputs`` into encoder features ``(N, T, F)``.

    ``mode``: ``"embedding"`` (learned ``nn.Embedding`` over token ids), ``"onehot"``
    (one-hot vectors of ``vocab_size``) or ``"features"`` (float inputs passed through).

    Example::

        >>> import torch
        >>> layer = InputLayer("onehot", vocab_size=5)
        >>> layer(torch.tensor([[1, 4]])).shape
        torch.Size([1, 2, 5])
    """

    def __init__(
        self,
        mode: str,
        vocab_size: int | None = None,
        embedding_dim: int | None = None,
        input_size: int | None = None,
        padding_idx: int | None = None,
    ) -> None:
        super().__init__()
        if mode not in INPUT_MODES:
            raise ValueError(f"input mode must be one of {', '.join(INPUT_MODES)}, got {mode!r}")
        self.mode = mode
        self.vocab_size = vocab_size
        # A parameter-free anchor so one-hot and float inputs follow the module's device/dtype.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)
        if mode in ("embedding", "onehot") and not vocab_size:
            raise ValueError(f"input mode {mode!r} needs vocab_size, got {vocab_size!r}")
        if mode == "embedding":
            if not embedding_dim:
                raise ValueError(
                    f"input mode 'embedding' needs embedding_dim, got {embedding_dim!r}"
                )
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=padding_idx)
            self.output_size = embedding_dim
        elif mode == "onehot":
            self.output_size = vocab_size
        else:
            if not input_size:
                raise ValueError("input mode 'features' needs input_size (features per step)")
            self.output_size = input_size

    def forward(self, inputs: Tensor) -> Tensor:
        if self.mode == "features":
            if not inputs.dtype.is_floating_point or inputs.dim() != 3:
                raise ValueError(
                    "this task expects float features (N, T, F); got "
                    f"{inputs.dtype} inputs of shape {tuple(inputs.shape)}"
                )
            if inputs.shape[-1] != self.output_size:
                raise ValueError(
                    f"inputs have {inputs.shape[-1]} features per step but the task was built "
                    f"with input_size={self.output_size}"
                )
            return inputs.to(self._anchor.dtype)
        if inputs.dtype.is_floating_point or inputs.dim() != 2:
            raise ValueError(
                f"this task expects token ids (N, T) for input mode {self.mode!r}; got "
                f"{inputs.dtype} inputs of shape {tuple(inputs.shape)}"
            )
        check_token_ids(inputs, self.vocab_size, "inputs")
        if self.mode == "embedding":
            return self.embedding(inputs)  # (N, T, E)
        return F.one_hot(inputs, self.vocab_size).to(self._anchor.dtype)  # (N, T, V)


def check_token_ids(ids: Tensor, vocab_size: int, name: str, ignore: int | None = None) -> None:
    """Raise a clear error when a batch holds ids outside the model's vocabulary."""
    if ids.numel() == 0:
        return
    real = ids if ignore is None else ids[ids != ignore]
    if real.numel() == 0:
        return
    lo, hi = int(real.min()), int(real.max())
    if lo < 0 or hi >= vocab_size:
        bad = hi if hi >= vocab_size else lo
        raise ValueError(
            f"{name} holds token id {bad}, outside the model's vocabulary of size {vocab_size} "
            "(data vocabulary and model vocab_size disagree)"
        )


def build_input_layer(
    input_mode: str | None,
    vocab_size: int | None,
    embedding_dim: int | None,
    input_size: int | None,
    padding_idx: int | None = None,
) -> InputLayer:
    """``input_mode=None`` picks ``"embedding"`` when a vocabulary is given, else ``"features"``."""
    mode = input_mode or ("embedding" if vocab_size else "features")
    return InputLayer(mode, vocab_size, embedding_dim, input_size, padding_idx)


def check_encoder_input(encoder: nn.Module, features: int, source: str) -> None:
    """The encoder must take what the input layer produces; name both sides when not."""
    expected = getattr(encoder, "input_size", None)
    if isinstance(expected, int) and expected != features:
        raise ValueError(
            f"encoder {type(encoder).__name__} takes input_size={expected} but {source} "
            f"produces {features} features per step"
        )


class SequenceEncoder(nn.Module):
    """Input layer + any encoder: ``(inputs (N, T) | (N, T, F), lengths) -> (outputs, final)``.

    Example::

        >>> import torch
        >>> enc = SequenceEncoder(torch.nn.RNN(4, 8, batch_first=True), vocab_size=10,
        ...                       embedding_dim=4)
        >>> out, h_n = enc(torch.randint(0, 10, (2, 5)), torch.tensor([5, 3]))
        >>> out.shape, h_n.shape
        (torch.Size([2, 5, 8]), torch.Size([1, 2, 8]))
    """

    def __init__(
        self,
        encoder: nn.Module,
        vocab_size: int | None = None,
        embedding_dim: int | None = None,
        input_size: int | None = None,
        input_mode: str | None = None,
        padding_idx: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise ValueError(f"encoder must be an nn.Module, got {type(encoder).__name__}")
        if input_size is None and not vocab_size:
            input_size = getattr(encoder, "input_size", None)
        self.input_layer = build_input_layer(
            input_mode, vocab_size, embedding_dim, input_size, padding_idx
        )
        check_encoder_input(
            encoder, self.input_layer.output_size, f"the {self.input_layer.mode} input layer"
        )
        self.encoder = encoder
        self.direction_sizes = encoder_direction_sizes(encoder)
        self.top_slots = encoder_top_slots(encoder)
        self.output_size = sum(self.direction_sizes)

    def forward(
        self, inputs: Tensor, lengths: Tensor, state: State | None = None
    ) -> tuple[Tensor, State]:
        features = self.input_layer(inputs)  # (N, T, F)
        return run_encoder(self.encoder, features, lengths, state)
