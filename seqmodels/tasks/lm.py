"""Language modelling over contiguous streams with truncated BPTT, perplexity and generation."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.text import Perplexity

from seqmodels.core import IGNORE_INDEX, State, detach_state, length_mask, map_state
from seqmodels.data.vocab import Vocabulary
from seqmodels.tasks.base import STAGES, SequenceTask, require_keys
from seqmodels.tasks.encoding import SequenceEncoder, check_token_ids
from seqmodels.tasks.optim import OptimizerSpec, SchedulerSpec
from seqmodels.tasks.sampling import check_sampling, next_token


class BitsPerToken(MeanMetric):
    """Token-weighted mean cross-entropy in bits (bits per character for character models)."""

    def compute(self) -> Tensor:
        return super().compute() / math.log(2)


def vocab_tokens(vocab: Mapping[str, Any]) -> list[str]:
    """The id -> token list of a vocabulary dict: ``{"tokens": [...]}`` (``Vocabulary.state_dict``)
    or ``{"itos": [...]}``, or a plain ``{token: id}`` mapping."""
    for key in ("tokens", "itos"):
        if key in vocab:
            return list(vocab[key])
    if all(isinstance(v, int) for v in vocab.values()):
        return [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
    raise ValueError(f"cannot read a vocabulary from a dict with keys {sorted(vocab)}")


def _batch_size(state: State) -> int:
    return (state[0] if isinstance(state, tuple) else state).shape[1]


class LanguageModel(SequenceTask):
    """A recurrent language model trained with truncated BPTT over contiguous chunks.

    Batch: ``{"inputs": (N, k) long, "targets": (N, k) long (-100 at padding),
    "lengths": (N,), "reset": (N,) bool}``. Row n of consecutive batches continues stream n:
    the final state of a chunk (detached, so gradients stop at the chunk boundary) is the
    initial state of the next; rows with ``reset`` start from zeros (a new document), and
    every state is dropped at the start of each train/val/test epoch. Each stage carries
    its own state, so validation never leaks into training or back.

    Inputs are learned embeddings (``input_mode="embedding"``, ``embedding_dim``) or
    one-hot vectors (``"onehot"``). Logged per stage: ``loss`` (cross-entropy, nats),
    ``perplexity`` (torchmetrics) and ``bpc`` (bits per token: per character for
    character models). ``vocab`` (a plain dict such as ``Vocabulary.state_dict()``) is
    a constructor argument (``seqmodels-train`` passes the DataModule's), hence a
    hyper-parameter stored in every checkpoint, so :meth:`generate` can take and return text.
    A model built without one takes its checkpoint's when ``fit``/``validate``/``test``
    load one (``ckpt_path=``), as ``load_from_checkpoint`` does.

    Example::

        >>> import torch
        >>> from seqmodels import ElmanRNN
        >>> lm = LanguageModel(ElmanRNN(5, 16, batch_first=True), vocab_size=5,
        ...                    input_mode="onehot")
        >>> ids = lm.generate([1, 2, 3], max_new_tokens=4, strategy="sample", seed=0)
        >>> len(ids)
        4
    """

    def __init__(
        self,
        encoder: nn.Module,
        vocab_size: int,
        input_mode: str = "embedding",
        embedding_dim: int | None = None,
        vocab: Mapping[str, Any] | None = None,
        dropout: float = 0.0,
        optimizer: OptimizerSpec = None,
        scheduler: SchedulerSpec = None,
        scheduler_interval: str = "epoch",
    ) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval)
        if vocab is not None:
            vocab = dict(vocab)
            tokens = vocab_tokens(vocab)
            if len(tokens) != vocab_size:
                raise ValueError(f"vocab has {len(tokens)} tokens but vocab_size is {vocab_size}")
        self._save_hparams()
        self.vocab_size = vocab_size
        self.vocab = vocab
        self.body = SequenceEncoder(encoder, vocab_size, embedding_dim, None, input_mode)
        self.dropout = nn.Dropout(dropout)
        self.decoder = nn.Linear(self.body.output_size, vocab_size)
        self._init_stage_metrics(
            lambda: MetricCollection(
                {"perplexity": Perplexity(ignore_index=IGNORE_INDEX), "bpc": BitsPerToken()}
            )
        )
        self._states: dict[str, State | None] = {}

    # --- model -----------------------------------------------------------------------------

    def forward(
        self, inputs: Tensor, lengths: Tensor | None = None, state: State | None = None
    ) -> tuple[Tensor, State]:
        """Logits ``(N, T, V)`` for the next token at every step, and the final state."""
        if lengths is None:
            lengths = torch.full((inputs.shape[0],), inputs.shape[1], dtype=torch.long)
        outputs, final = self.body(inputs, lengths.clamp(min=1), state)  # (N, T, H)
        return self.decoder(self.dropout(outputs)), final

    # --- truncated BPTT: the carried state --------------------------------------------------

    def carried_state(self, stage: str) -> State | None:
        """The detached state that the next ``stage`` batch starts from (None: zeros)."""
        return self._states.get(stage)

    def reset_state(self, stage: str | None = None) -> None:
        """Forget the carried state of one stage (or all)."""
        for s in STAGES if stage is None else (stage,):
            self._states[s] = None

    def _initial_state(self, stage: str, batch: dict[str, Tensor]) -> State | None:
        state = self._states.get(stage)
        n = batch["inputs"].shape[0]
        if state is None or _batch_size(state) != n:
            return None  # a different number of rows means different streams
        reset = batch.get("reset")
        if reset is None:
            return state
        # Zero the rows whose stream starts here (zeros are every seqmodels cell's h_0).
        keep = (~reset.to(device=self.device, dtype=torch.bool)).view(1, n, 1)
        return map_state(lambda s: s * keep.to(s.dtype), state)

    def on_train_epoch_start(self) -> None:
        self.reset_state()

    def on_validation_epoch_start(self) -> None:
        self._states["val"] = None

    def on_test_epoch_start(self) -> None:
        self._states["test"] = None

    # --- steps -----------------------------------------------------------------------------

    def shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        require_keys(batch, ("inputs", "targets", "lengths"), type(self).__name__)
        inputs, targets, lengths = batch["inputs"], batch["targets"], batch["lengths"]
        if targets.shape != inputs.shape:
            raise ValueError(
                f"{stage} batch: targets {tuple(targets.shape)} must have the inputs' shape "
                f"{tuple(inputs.shape)} (the next token at every step)"
            )
        check_token_ids(targets, self.vocab_size, f"{stage} batch targets", ignore=IGNORE_INDEX)
        logits, final = self(inputs, lengths, self._initial_state(stage, batch))
        self._states[stage] = detach_state(final)
        # Padded steps (beyond lengths) are ignored whatever their target holds.
        mask = length_mask(lengths.to(targets.device), targets.shape[1])
        targets = targets.masked_fill(~mask, IGNORE_INDEX)
        tokens = int((targets != IGNORE_INDEX).sum())
        loss = F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE_INDEX)
        metrics = self.stage_metrics(stage)
        metrics.loss.update(loss.detach(), weight=tokens)
        metrics.scores["perplexity"].update(logits.detach(), targets)
        metrics.scores["bpc"].update(loss.detach(), weight=tokens)
        self.log(f"{stage}/loss", metrics.loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(metrics.scores, on_step=False, on_epoch=True)
        if stage == "train":
            self.log("train/loss_step", loss.detach(), on_step=True, on_epoch=False)
        return loss

    # --- vocabulary ------------------------------------------------------------------------

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A model built without a vocabulary takes its checkpoint's (``trainer.fit`` /
        ``validate`` / ``test`` with ``ckpt_path=``), as ``load_from_checkpoint`` does."""
        vocab = (checkpoint.get("hyper_parameters") or {}).get("vocab")
        if self.vocab is None and vocab is not None:
            self.check_vocab(vocab)

    def check_vocab(self, data_vocab: Any = None, data_vocab_size: int | None = None) -> None:
        """Raise when the data's vocabulary differs from the model's; adopt it if we have none."""
        state = data_vocab.state_dict() if hasattr(data_vocab, "state_dict") else data_vocab
        if data_vocab_size is None and state is not None:
            data_vocab_size = len(vocab_tokens(state))
        if data_vocab_size is not None and data_vocab_size != self.vocab_size:
            raise ValueError(
                f"vocabulary mismatch: the model has {self.vocab_size} tokens, the data "
                f"{data_vocab_size}"
            )
        if state is None:
            return
        if self.vocab is None:
            self.vocab = dict(state)
            self.hparams["vocab"] = self.vocab  # so the checkpoint carries it
            return
        ours, theirs = vocab_tokens(self.vocab), vocab_tokens(state)
        if ours != theirs:
            pairs = enumerate(zip(ours, theirs, strict=False))
            i = next((i for i, (a, b) in pairs if a != b), min(len(ours), len(theirs)))
            mine = ours[i] if i < len(ours) else "<none>"
            data = theirs[i] if i < len(theirs) else "<none>"
            raise ValueError(
                f"vocabulary mismatch at id {i}: the model has {mine!r}, the data {data!r}"
            )

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with the stored vocabulary."""
        if self.vocab is None:
            raise ValueError("this model stores no vocabulary; pass token ids instead of text")
        if self.vocab.get("format", "").startswith("seqmodels.vocabulary"):
            return Vocabulary.from_state_dict(self.vocab).encode(text)
        stoi = {t: i for i, t in enumerate(vocab_tokens(self.vocab))}
        pieces = list(text) if self.vocab.get("level", "char") == "char" else text.split()
        unk = stoi.get("<unk>")
        missing = [p for p in pieces if p not in stoi]
        if missing and unk is None:
            raise ValueError(f"tokens {missing[:5]} are not in the vocabulary (and no <unk>)")
        return [stoi.get(p, unk) for p in pieces]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids with the stored vocabulary, at every level: characters are
        joined as they are, words with a space (``Vocabulary.decode_text``)."""
        if self.vocab is None:
            raise ValueError("this model stores no vocabulary; cannot decode to text")
        if self.vocab.get("format", "").startswith("seqmodels.vocabulary"):
            return Vocabulary.from_state_dict(self.vocab).decode_text(list(ids))
        tokens = vocab_tokens(self.vocab)
        return self._separator().join(tokens[i] for i in ids)

    def _separator(self) -> str:
        """What joins two decoded tokens: nothing for characters, a space for words."""
        return "" if (self.vocab or {}).get("level", "char") == "char" else " "

    def continuation(self, prompt: str, ids: Sequence[int]) -> str:
        """The text of ``ids`` as it continues ``prompt``: ``prompt + continuation(...)`` reads
        as one text (word-level text starts with a space unless the prompt ends in one)."""
        text = self.decode(ids)
        sep = self._separator()
        if text and sep and prompt and not prompt[-1].isspace():
            text = sep + text
        return text

    # --- generation ------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        prompt: str | Sequence[int] | Tensor,
        max_new_tokens: int,
        strategy: str = "greedy",
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
    ) -> list[int] | str:
        """Warm the state on ``prompt``, then emit ``max_new_tokens`` tokens one at a time.

        ``strategy="greedy"`` takes the most likely token; ``"sample"`` draws from the
        softmax at ``temperature`` (0: greedy) among the ``top_k`` most likely tokens. A
        ``seed`` makes sampling reproducible (its own generator: the global RNG is untouched).
        Returns token ids, or when ``prompt`` is text the generated text as it continues the
        prompt (:meth:`continuation`: ``prompt + result`` is the whole text, at any level).
        """
        check_sampling(strategy, temperature, top_k, max_new_tokens)
        as_text = isinstance(prompt, str)
        ids = self.encode(prompt) if as_text else torch.as_tensor(prompt).flatten().tolist()
        if not ids:
            raise ValueError("generate needs a non-empty prompt to warm the state on")
        check_token_ids(torch.tensor(ids), self.vocab_size, "prompt")
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed) if seed is not None else generator.seed()
        was_training = self.training
        self.eval()
        try:
            x = torch.tensor([ids], device=self.device)  # (1, P)
            logits, state = self(x)
            out: list[int] = []
            for _ in range(max_new_tokens):
                token = next_token(logits[:, -1], strategy, temperature, top_k, generator)  # (1,)
                out.append(int(token))
                logits, state = self(token.view(1, 1), state=state)
        finally:
            self.train(was_training)
        return self.continuation(prompt, out) if as_text else out
