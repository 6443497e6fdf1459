"""Known baselines of the synthetic benchmarks, as exact formulas and as predictors.

* Adding problem (Arjovsky, Shah & Bengio, 2016; Le, Jaitly & Hinton, 2015): the
  target is the sum of two U[0, 1] values, so always predicting its mean 1 scores
  the variance of that sum, MSE = 1/6 ≈ 0.167.
* Copying memory (Arjovsky et al., 2016): a model without memory outputs blank for
  the first T + 10 steps (certain) and a uniform guess over the 8 categories in the
  last 10, a cross-entropy per step of ``10·ln 8 / (T + 20)`` (0.173 at T = 100).
* Reversal / sorting: a model that ignores the source guesses each symbol uniformly,
  ``ln K`` nats per symbol for K symbols, token accuracy ``1/K``.

Example:
    >>> round(adding_baseline_mse(), 4), round(copy_memory_baseline(100), 4)
    (0.1667, 0.1733)
"""

from __future__ import annotations

import math

import torch


def adding_baseline_mse() -> float:
    """MSE of the constant-1 predictor on the adding problem: Var(U1 + U2) = 1/6."""
    return 1.0 / 6.0


def constant_predictor_mse(targets: torch.Tensor, constant: float = 1.0) -> float:
    """Mean squared error of always predicting ``constant`` for ``targets`` (any shape)."""
    return float(((targets.double() - constant) ** 2).mean())


def copy_memory_baseline(delay: int, n_symbols: int = 10, n_categories: int = 8) -> float:
    """Cross-entropy per step (nats) of the memoryless copy-task predictor.

    ``n_symbols`` of the ``delay + 2·n_symbols`` target steps are uniform guesses over
    ``n_categories``; the others are blanks, predicted with certainty.
    """
    return n_symbols * math.log(n_categories) / (delay + 2 * n_symbols)


def copy_memory_baseline_log_probs(
    delay: int, n_symbols: int = 10, n_categories: int = 8
) -> torch.Tensor:
    """Log-probabilities ``(delay + 2·n_symbols, n_categories + 1)`` of that predictor.

    Class 0 is blank, classes ``1..n_categories`` the symbols (as in the DataModule).
    """
    steps = delay + 2 * n_symbols
    log_probs = torch.full((steps, n_categories + 1), -math.inf, dtype=torch.float64)
    log_probs[: steps - n_symbols, 0] = 0.0  # blank, certain
    log_probs[steps - n_symbols :, 1:] = -math.log(n_categories)  # uniform guess
    return log_probs


def uniform_symbol_baseline(n_symbols: int) -> float:
    """Cross-entropy per target symbol (nats) of a source-blind uniform guess: ``ln K``."""
    return math.log(n_symbols)
