"""How a task talks to any encoder: input embedding, packing, output widths and final states.

Every encoder (``torch.nn.RNN``, :class:`~seqmodels.ElmanRNN` on either backend, the generic
:class:`~seqmodels.Recurrent` / :class:`~seqmodels.Bidirectional` / :class:`~seqmodels.Stacked`
layers over any cell) is called the same way: ``encoder(packed, state)`` with a
``PackedSequence``, so padded steps never reach the recurrence whatever the encoder's
``batch_first`` setting is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqmodels.layers import Bidirectional, SequenceLayer, Stacked

INPUT_MODES = ("embedding", "onehot", "features")


def encoder_output_size(encoder: nn.Module) -> int:
    """Features per step of an encoder's output: ``output_size``, else nn.RNN's ``D * H``."""
    size = getattr(encoder, "output_size", None)
    if isinstance(size, int):
        return size
    hidden = getattr(encoder, "hidden_size", None)
    if not isinstance(hidden, int):
        raise ValueError(
            f"cannot tell the output size of encoder {type(encoder).__name__}: it has neither "
            "an 'output_size' nor a 'hidden_size' attribute"
        )
    hidden = getattr(encoder, "proj_size", 0) or hidden  # nn.LSTM with projections
    return hidden * (2 if getattr(encoder, "bidirectional", False) else 1)


def encoder_direction_sizes(encoder: nn.Module) -> tuple[int, int]:
    """``(forward, backward)`` widths of the last layer's output (backward 0: one direction)."""
    if isinstance(encoder, Stacked):
        return encoder_direction_sizes(encoder.layers[-1])
    if isinstance(encoder, Bidirectional):
        return encoder.forward_layer.output_size, encoder.backward_layer.output_size
    size = encoder_output_size(encoder)
    if not isinstance(encoder, SequenceLayer) and getattr(encoder, "bidirectional", False):
        return size // 2, size - size // 2
    return size, 0


def encoder_last_layer_slots(encoder: nn.Module) -> int:
    """How many state slots (directions) the encoder's last layer has in its final state."""
    if isinstance(encoder, Stacked):
        return encoder.layers[-1].num_states
    if isinstance(encoder, SequenceLayer):
        return encoder.num_states
    return 2 if getattr(encoder, "bidirectional", False) else 1


def last_layer_state(final: Tensor | tuple[Tensor, ...], slots: int) -> Tensor:
    """The last layer's hidden states side by side: ``(S, N, H)`` -> ``(N, slots * H)``.

    For a tuple state (LSTM-like ``(h, c)``) the first element, the hidden state, is used.
    """
    h = final[0] if isinstance(final, tuple) else final
    last = h[-slots:]  # (slots, N, H)
    return last.transpose(0, 1).reshape(h.shape[1], -1)  # (N, slots * H)


def run_encoder(
    encoder: nn.Module,
    inputs: Tensor,
    lengths: Tensor,
    state: Tensor | tuple[Tensor, ...] | None = None,
) -> tuple[Tensor, Tensor | tuple[Tensor, ...]]:
    """Run ``encoder`` on a padded batch-first ``inputs`` ``(N, T, F)`` with real ``lengths``.

    Returns the padded output ``(N, T, H_out)`` (zeros at padded steps) and the final state,
    taken at each sequence's own last real step, in nn.RNN's layout ``(S, N, H)``.
    """
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
        self.output_size = encoder_output_size(encoder)
        self.direction_sizes = encoder_direction_sizes(encoder)
        self.last_layer_slots = encoder_last_layer_slots(encoder)

    def forward(
        self,
        inputs: Tensor,
        lengths: Tensor,
        state: Tensor | tuple[Tensor, ...] | None = None,
    ) -> tuple[Tensor, Tensor | tuple[Tensor, ...]]:
        features = self.input_layer(inputs)  # (N, T, F)
        return run_encoder(self.encoder, features, lengths, state)
