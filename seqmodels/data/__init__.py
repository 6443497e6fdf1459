"""Data for seqmodels: LightningDataModules, vocabularies, collate, readers, synthetic tasks.

The contract with :mod:`seqmodels.tasks`
=========================================

Every DataModule is a :class:`lightning.LightningDataModule` built from plain values
(so Hydra can make it with ``_target_``): ``batch_size``, ``num_workers=0``, ``seed``,
``max_length`` (T_max), ``truncate``, and ``val_fraction``/``test_fraction`` where it
splits. After ``setup()`` it exposes what a model needs to size itself:

* ``vocab`` (a :class:`Vocabulary`, where inputs are tokens), ``vocab_size``,
* ``input_size`` (features per step, where inputs are floats),
* ``num_classes`` and ``labels`` (a :class:`Labels`; classification and tagging),
* ``output_size`` (values per step or per sequence; regression and forecasting),
* ``target_vocab`` / ``target_vocab_size`` (seq2seq), ``pad_id`` (always 0).

Batches are dicts of batch-first tensors (``lengths`` on CPU; an extra ``"index"``
LongTensor ``(N,)`` gives each row's position in its split):

* many-to-one: ``inputs`` LongTensor ``(N, T)`` of token ids or FloatTensor
  ``(N, T, F)``; ``lengths`` ``(N,)``; ``targets`` LongTensor ``(N,)`` class ids or
  FloatTensor ``(N,)``/``(N, K)`` for regression.
* many-to-many (tagging, per-step regression, forecasting): ``targets`` LongTensor
  ``(N, T)`` padded with -100 (``ignore_index``), or FloatTensor ``(N, T)``/
  ``(N, T, K)`` padded with 0; the mask comes from ``lengths``.
* encoder-decoder: ``source`` ``(N, S)`` long or ``(N, S, F)`` float,
  ``source_lengths`` ``(N,)``, ``target`` LongTensor ``(N, U)`` = BOS ... EOS padded
  with ``pad_id``, ``target_lengths`` ``(N,)`` (counting BOS and EOS).
* language model: ``inputs``/``targets`` LongTensor ``(N, k)`` (targets are the next
  tokens, padded steps -100), ``lengths`` ``(N,)``, ``reset`` BoolTensor ``(N,)``: true
  where that row's hidden state must be reset before this chunk (first chunk of an
  epoch, or a new document starts the row). Row n of consecutive batches continues
  stream n; each document starts at a chunk start (see :mod:`seqmodels.data.streams`).

``Vocabulary`` ids: ``pad_id`` 0, ``unk_id`` 1, ``bos_id`` 2, ``eos_id`` 3. The
DataModule's ``state_dict()`` (stored by Lightning in every checkpoint) holds the
vocabularies and labels as plain dicts and ``load_state_dict`` reuses them, so
evaluation and generation see the training mapping; ``Vocabulary.state_dict()`` /
``from_state_dict()`` and ``save()`` / ``load()`` do the same by hand.

A sequence longer than ``max_length`` is cut when ``truncate=True``; otherwise a
:class:`DataError` names the example index and the file and line it came from.
Bad input files raise :class:`DataError` naming the file, the line and what was
expected; with ``skip_invalid=True`` the bad rows are skipped and counted in one
logged warning. Nothing is ever downloaded.

Example:
    >>> from seqmodels.data import AddingDataModule
    >>> dm = AddingDataModule(length=20, n_train=32, n_val=8, n_test=8, batch_size=4)
    >>> dm.setup()
    >>> sorted(next(iter(dm.train_dataloader())))
    ['index', 'inputs', 'lengths', 'targets']
"""

from seqmodels.data.base import ExampleDataset, SequenceDataModule
from seqmodels.data.classification import SequenceClassificationDataModule
from seqmodels.data.collate import IGNORE_INDEX, PadCollate, fit_length
from seqmodels.data.errors import DataError, DataFileNotFoundError, SkipLog
from seqmodels.data.forecasting import ForecastingDataModule
from seqmodels.data.language_model import LanguageModelDataModule
from seqmodels.data.readers.conllu import Sentence, read_conllu
from seqmodels.data.readers.delimited import Record, read_labelled, read_pairs
from seqmodels.data.readers.text import read_text, read_text_documents
from seqmodels.data.readers.timeseries import read_series_csv
from seqmodels.data.seq2seq import Seq2SeqDataModule
from seqmodels.data.splits import (
    EmptySplitError,
    EpochShuffleSampler,
    chronological_split,
    epoch_seed,
    make_generator,
    min_examples,
    seed_worker,
    split_indices,
)
from seqmodels.data.streams import StreamBatches
from seqmodels.data.synthetic import (
    AddingDataModule,
    CopyMemoryDataModule,
    SequenceTransformDataModule,
    adding_baseline_mse,
    adding_problem,
    constant_predictor_mse,
    copy_memory,
    copy_memory_baseline,
    copy_memory_baseline_log_probs,
    uniform_symbol_baseline,
)
from seqmodels.data.tagging import TaggingDataModule
from seqmodels.data.tokenizers import get_tokenizer
from seqmodels.data.vocab import Labels, Vocabulary

__all__ = [
    "IGNORE_INDEX",
    "AddingDataModule",
    "CopyMemoryDataModule",
    "DataError",
    "DataFileNotFoundError",
    "EmptySplitError",
    "EpochShuffleSampler",
    "ExampleDataset",
    "ForecastingDataModule",
    "Labels",
    "LanguageModelDataModule",
    "PadCollate",
    "Record",
    "Sentence",
    "Seq2SeqDataModule",
    "SequenceClassificationDataModule",
    "SequenceDataModule",
    "SequenceTransformDataModule",
    "SkipLog",
    "StreamBatches",
    "TaggingDataModule",
    "Vocabulary",
    "adding_baseline_mse",
    "adding_problem",
    "chronological_split",
    "constant_predictor_mse",
    "copy_memory",
    "copy_memory_baseline",
    "copy_memory_baseline_log_probs",
    "epoch_seed",
    "fit_length",
    "get_tokenizer",
    "make_generator",
    "min_examples",
    "read_conllu",
    "read_labelled",
    "read_pairs",
    "read_series_csv",
    "read_text",
    "read_text_documents",
    "seed_worker",
    "split_indices",
    "uniform_symbol_baseline",
]
