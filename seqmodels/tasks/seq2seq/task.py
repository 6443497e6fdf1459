"""The encoder-decoder task: teacher forcing (scheduled), greedy and beam decoding."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy
from torchmetrics.text import CharErrorRate

from seqmodels.cells import RecurrentCell
from seqmodels.core import length_mask
from seqmodels.tasks.base import STAGES, SequenceTask, is_spec, require_keys
from seqmodels.tasks.encoding import SequenceEncoder, check_token_ids, top_layer_state
from seqmodels.tasks.optim import OptimizerSpec, SchedulerSpec
from seqmodels.tasks.seq2seq.decoder import Bridge, Decoder
from seqmodels.tasks.seq2seq.schedule import TeacherForcingSchedule
from seqmodels.tasks.seq2seq.search import beam_search, greedy_search


def strip(ids: list[int], eos_id: int, pad_id: int) -> list[int]:
    """Tokens before the first EOS, without padding."""
    out = []
    for i in ids:
        if i == eos_id:
            break
        if i != pad_id:
            out.append(i)
    return out


def as_text(ids: list[int]) -> str:
    """One character per token id, so a character error rate is a token error rate."""
    return "".join(chr(0x100 + i) for i in ids)


class Seq2Seq(SequenceTask):
    """Encoder-decoder with optional attention, scheduled teacher forcing and beam search.

    Batch: ``{"source": (N, S) long | (N, S, F) float, "source_lengths": (N,),
    "target": (N, U) long = BOS ... EOS then pad_id, "target_lengths": (N,)}``.

    The encoder (any seqmodels layer, ``ElmanRNN`` or ``nn.RNN``; bidirectional allowed)
    reads the source; the ``bridge`` maps its last layer's final states to the decoder's
    initial state; the decoder (``decoder_cell``: a cell or a factory ``input_size -> cell``)
    emits the target one token at a time, attending over the encoder outputs when
    ``attention`` is ``"dot"``, ``"general"`` or ``"additive"`` (padding masked out).

    Training feeds the gold previous token with probability ``teacher_forcing`` (a number,
    or a schedule mapping such as ``{"kind": "linear", "start": 1.0, "end": 0.5, "steps":
    2000}``, see :class:`TeacherForcingSchedule`) and the model's own prediction otherwise.
    Logged per stage: ``loss`` and ``token_acc`` (teacher-forced); on val/test also
    ``exact_match`` and ``cer`` (character/token error rate) of free-running decoding with
    ``beam_width`` (1: greedy) and ``length_penalty``.

    Example::

        >>> import torch
        >>> from seqmodels import ElmanCell, ElmanRNN
        >>> task = Seq2Seq(ElmanRNN(8, 16, batch_first=True, bidirectional=True),
        ...                decoder_cell=ElmanCell(8 + 32, 16), target_vocab_size=10,
        ...                source_vocab_size=10, source_embedding_dim=8,
        ...                target_embedding_dim=8, attention="general")
        >>> source, lengths = torch.randint(4, 10, (2, 5)), torch.tensor([5, 3])
        >>> task.decode(source, lengths, max_length=6, beam_width=3).shape[0]
        2
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder_cell: RecurrentCell | Callable[[int], RecurrentCell],
        target_vocab_size: int,
        source_vocab_size: int | None = None,
        source_embedding_dim: int | None = None,
        source_input_size: int | None = None,
        target_embedding_dim: int = 32,
        attention: str | None = None,
        attention_size: int | None = None,
        bridge: str = "linear",
        pad_id: int = 0,
        bos_id: int = 2,
        eos_id: int = 3,
        teacher_forcing: float | Mapping[str, Any] = 1.0,
        beam_width: int = 1,
        length_penalty: float = 0.0,
        max_decode_length: int | None = None,
        dropout: float = 0.0,
        optimizer: OptimizerSpec = None,
        scheduler: SchedulerSpec = None,
        scheduler_interval: str = "epoch",
    ) -> None:
        super().__init__(optimizer, scheduler, scheduler_interval)
        self._save_hparams(later=("decoder_cell",))
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.target_vocab_size = target_vocab_size
        self.beam_width, self.length_penalty = beam_width, length_penalty
        self.max_decode_length = max_decode_length
        self.teacher_forcing = TeacherForcingSchedule.from_spec(teacher_forcing)
        pad = pad_id if source_vocab_size else None
        self.body = SequenceEncoder(
            encoder, source_vocab_size, source_embedding_dim, source_input_size, None, pad
        )
        self.decoder = Decoder(
            decoder_cell,
            target_vocab_size,
            target_embedding_dim,
            self.body.output_size,
            attention,
            attention_size,
            pad_id,
            dropout,
        )
        # A factory from config keeps its spec; any other is stored as the built cell's spec
        # (plain data), so a checkpoint rebuilds the decoder by itself.
        if not is_spec(self.hparams.get("decoder_cell")):
            self._set_module_hparam("decoder_cell", self.decoder.cell)
        # The last layer's final states side by side are as wide as its output (per step).
        self.bridge = Bridge(bridge, sum(self.body.direction_sizes), self.decoder.hidden_size)
        self._init_stage_metrics(
            lambda: MetricCollection(
                {"token_acc": MulticlassAccuracy(target_vocab_size, average="micro")}
            )
        )
        for stage in STAGES[1:]:  # free-running decoding is scored on val/test only
            setattr(self, f"{stage}_exact_match", MeanMetric())
            setattr(self, f"{stage}_cer", CharErrorRate())

    # --- encoder side ----------------------------------------------------------------------

    def encode(self, source: Tensor, source_lengths: Tensor) -> tuple[Any, Any]:
        """Source -> (decoder initial state, attention memory or None)."""
        outputs, final = self.body(source, source_lengths)  # (N, S, H_enc)
        summary = top_layer_state(final, self.body.top_slots)  # (N, D * H)
        state = self.bridge(summary, self.decoder.cell)
        mask = length_mask(source_lengths.to(outputs.device), outputs.shape[1])  # (N, S)
        return state, self.decoder.prepare(outputs, mask)

    # --- training: teacher forcing ----------------------------------------------------------

    def forward(
        self, source: Tensor, source_lengths: Tensor, target: Tensor, teacher_forcing: float = 1.0
    ) -> Tensor:
        """Logits ``(N, U - 1, V)`` for ``target[:, 1:]`` given ``target[:, :-1]``.

        With ``teacher_forcing < 1`` each step feeds, per sequence, the gold previous token
        with that probability and the model's own (argmax) prediction otherwise.
        """
        state, memory = self.encode(source, source_lengths)
        logits = []
        tokens = target[:, 0]  # BOS
        for t in range(target.shape[1] - 1):
            step_logits, state = self.decoder.step(tokens, state, memory)  # (N, V)
            logits.append(step_logits)
            gold = target[:, t + 1]
            if teacher_forcing >= 1.0:
                tokens = gold
            else:
                use_gold = torch.rand(gold.shape, device=gold.device) < teacher_forcing
                tokens = torch.where(use_gold, gold, step_logits.detach().argmax(-1))
        return torch.stack(logits, 1)  # (N, U - 1, V)

    def shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        keys = ("source", "source_lengths", "target", "target_lengths")
        require_keys(batch, keys, type(self).__name__)
        source, source_lengths = batch["source"], batch["source_lengths"]
        target, target_lengths = batch["target"], batch["target_lengths"]
        if target.dim() != 2 or target.shape[0] != source.shape[0] or target.shape[1] < 2:
            raise ValueError(
                f"{stage} batch: target must be (N, U) with U >= 2 (BOS ... EOS) and the source's "
                f"N={source.shape[0]}, got {tuple(target.shape)}"
            )
        check_token_ids(target, self.target_vocab_size, f"{stage} batch target")
        ratio = self.teacher_forcing(self.global_step) if stage == "train" else 1.0
        logits = self(source, source_lengths, target, ratio)  # (N, U-1, V)
        gold = target[:, 1:]
        # Predicted positions are 1..len-1 of each target: the rest is padding.
        mask = length_mask(target_lengths.to(gold.device) - 1, gold.shape[1])  # (N, U-1)
        real_logits, real_gold = logits[mask], gold[mask]  # (M, V), (M,)
        loss = F.cross_entropy(real_logits, real_gold)
        self.log_stage(stage, loss, real_gold.numel(), real_logits.detach(), real_gold)
        if stage == "train":
            self.log("train/teacher_forcing", ratio, on_step=True, on_epoch=False)
        else:
            self._score_decoding(stage, source, source_lengths, target, target_lengths)
        return loss

    def _score_decoding(
        self, stage: str, source: Tensor, source_lengths: Tensor, target: Tensor, target_lengths
    ) -> None:
        predictions = self.decode(source, source_lengths).tolist()
        lengths = target_lengths.tolist()
        refs = [row[1 : n - 1] for row, n in zip(target.tolist(), lengths, strict=True)]
        hyps = [strip(p, self.eos_id, self.pad_id) for p in predictions]
        exact = torch.tensor([float(h == r) for h, r in zip(hyps, refs, strict=True)])
        exact_match = getattr(self, f"{stage}_exact_match")
        cer = getattr(self, f"{stage}_cer")
        exact_match.update(exact.to(self.device))
        cer.update([as_text(h) for h in hyps], [as_text(r) for r in refs])
        self.log(f"{stage}/exact_match", exact_match, on_step=False, on_epoch=True)
        self.log(f"{stage}/cer", cer, on_step=False, on_epoch=True)

    # --- inference -------------------------------------------------------------------------

    @torch.no_grad()
    def decode(
        self,
        source: Tensor,
        source_lengths: Tensor,
        max_length: int | None = None,
        beam_width: int | None = None,
        length_penalty: float | None = None,
    ) -> Tensor:
        """Free-running decoding -> ``(N, L)`` ids (no BOS; EOS then ``pad_id`` after it).

        ``beam_width`` 1 is greedy search. ``max_length`` defaults to the constructor's
        ``max_decode_length``, else twice the longest real source plus 5.
        """
        beam_width = self.beam_width if beam_width is None else beam_width
        length_penalty = self.length_penalty if length_penalty is None else length_penalty
        if max_length is None:
            max_length = self.max_decode_length or 2 * int(source_lengths.max()) + 5
        state, memory = self.encode(source, source_lengths)
        args = (self.decoder.log_prob_step, state, memory, source.shape[0])
        ids = (self.bos_id, self.eos_id, self.pad_id, max_length, source.device)
        if beam_width == 1:
            return greedy_search(*args, *ids)
        return beam_search(*args, *ids, beam_width=beam_width, length_penalty=length_penalty)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int = 0) -> Tensor:
        return self.decode(batch["source"], batch["source_lengths"])
