"""Synthetic benchmarks generated from a seed, and their known baselines."""

from seqmodels.data.synthetic.adding import AddingDataModule, adding_problem
from seqmodels.data.synthetic.baselines import (
    adding_baseline_mse,
    constant_predictor_mse,
    copy_memory_baseline,
    copy_memory_baseline_log_probs,
    uniform_symbol_baseline,
)
from seqmodels.data.synthetic.copying import CopyMemoryDataModule, copy_memory
from seqmodels.data.synthetic.seq2seq_tasks import SequenceTransformDataModule, symbol_sequences

__all__ = [
    "AddingDataModule",
    "CopyMemoryDataModule",
    "SequenceTransformDataModule",
    "adding_baseline_mse",
    "adding_problem",
    "constant_predictor_mse",
    "copy_memory",
    "copy_memory_baseline",
    "copy_memory_baseline_log_probs",
    "symbol_sequences",
    "uniform_symbol_baseline",
]
