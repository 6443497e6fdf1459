"""Tasks as LightningModules: each owns a loss, metrics and decoding, never a recurrence.

* :class:`SequenceClassifier`: many-to-one classification / regression;
* :class:`SequenceTagger`: many-to-many tagging / per-step regression;
* :class:`Seq2Seq`: encoder-decoder with attention, teacher forcing, greedy and beam search;
* :class:`LanguageModel`: truncated BPTT over streams, perplexity, generation;
  :class:`NGramLM` / :class:`NGramBaseline`: the add-k n-gram baseline.
"""

from seqmodels.tasks.base import SequenceTask
from seqmodels.tasks.classify import SequenceClassifier
from seqmodels.tasks.encoding import InputLayer, SequenceEncoder, encoder_output_size, run_encoder
from seqmodels.tasks.heads import Head
from seqmodels.tasks.lm import LanguageModel
from seqmodels.tasks.ngram import NGramBaseline, NGramLM
from seqmodels.tasks.optim import ExponentialDecayLR, build_optimizer, build_scheduler
from seqmodels.tasks.pooling import pool
from seqmodels.tasks.sampling import next_token
from seqmodels.tasks.seq2seq import Seq2Seq, TeacherForcingSchedule
from seqmodels.tasks.tag import SequenceTagger

__all__ = [
    "SequenceTask",
    "SequenceClassifier",
    "SequenceTagger",
    "LanguageModel",
    "Seq2Seq",
    "TeacherForcingSchedule",
    "NGramLM",
    "NGramBaseline",
    "next_token",
    "SequenceEncoder",
    "InputLayer",
    "Head",
    "pool",
    "run_encoder",
    "encoder_output_size",
    "ExponentialDecayLR",
    "build_optimizer",
    "build_scheduler",
]
