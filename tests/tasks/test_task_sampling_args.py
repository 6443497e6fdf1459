"""Sampling settings that would give garbage or silently nothing are refused, with the value."""

import math

import pytest
import torch

from seqmodels import ElmanRNN
from seqmodels.tasks.lm import LanguageModel
from seqmodels.tasks.sampling import check_sampling, next_token


@pytest.fixture(scope="module")
def task():
    torch.manual_seed(0)
    return LanguageModel(ElmanRNN(4, 8, batch_first=True), vocab_size=7, embedding_dim=4)


@pytest.mark.parametrize("temperature", [math.nan, math.inf, -math.inf, -0.5, "hot", True])
def test_bad_temperature_is_refused_before_generating(task, temperature):
    with pytest.raises(ValueError, match=r"temperature must be a finite number >= 0.*got"):
        task.generate([1, 2], 5, strategy="sample", temperature=temperature)
    with pytest.raises(ValueError, match="temperature"):
        next_token(torch.zeros(1, 7), "sample", temperature)


@pytest.mark.parametrize("max_new_tokens", [-1, -10, 2.5, True])
def test_bad_max_new_tokens_is_refused(task, max_new_tokens):
    with pytest.raises(ValueError, match=r"max_new_tokens must be an integer >= 0, got"):
        task.generate([1, 2], max_new_tokens)


def test_nan_temperature_is_refused_even_when_nothing_is_generated(task):
    with pytest.raises(ValueError, match="got nan"):
        task.generate([1, 2], 0, strategy="sample", temperature=math.nan)


def test_good_settings_pass(task):
    assert task.generate([1, 2], 0) == []
    assert len(task.generate([1, 2], 3, strategy="sample", temperature=0.5, seed=0)) == 3
    assert task.generate([1, 2], 3, strategy="sample", temperature=0) == task.generate([1, 2], 3)
    check_sampling("sample", 1, top_k=2, max_new_tokens=0)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        check_sampling("sample", 1.0, top_k=0)
    with pytest.raises(ValueError, match="strategy must be one of"):
        check_sampling("beam", 1.0)
