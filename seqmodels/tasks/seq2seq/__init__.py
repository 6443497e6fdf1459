"""Encoder-decoder: attention, decoder, bridge, teacher-forcing schedules, greedy/beam search."""

from seqmodels.tasks.seq2seq.attention import Attention, Memory
from seqmodels.tasks.seq2seq.decoder import Bridge, Decoder
from seqmodels.tasks.seq2seq.schedule import TeacherForcingSchedule
from seqmodels.tasks.seq2seq.search import beam_search, greedy_search
from seqmodels.tasks.seq2seq.task import Seq2Seq

__all__ = [
    "Seq2Seq",
    "Attention",
    "Memory",
    "Decoder",
    "Bridge",
    "TeacherForcingSchedule",
    "greedy_search",
    "beam_search",
]
