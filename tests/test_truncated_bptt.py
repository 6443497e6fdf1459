"""Chunks of one stream with the state carried forward detached (truncated BPTT)."""

import pytest
import torch
from test_generic_layers import PairStateCell

from seqmodels import ElmanRNN, Stacked, detach_state, split_chunks


@pytest.mark.parametrize("backend", ["autograd", "bptt"])
def test_chunked_forward_equals_one_pass(backend):
    rnn = ElmanRNN(3, 5, num_layers=2, backend=backend)
    stream = torch.randn(23, 2, 3)
    full, h_full = rnn(stream)
    outputs, state = [], None
    for chunk in split_chunks(stream, 5):
        out, state = rnn(chunk, state)
        state = detach_state(state)
        outputs.append(out)
    torch.testing.assert_close(torch.cat(outputs), full)
    torch.testing.assert_close(state, h_full)
    assert [c.shape[0] for c in split_chunks(stream, 5)] == [5, 5, 5, 5, 3]


@pytest.mark.parametrize("backend", ["autograd", "bptt"])
def test_gradients_stop_at_chunk_boundaries(backend):
    rnn = ElmanRNN(3, 5, backend=backend)
    stream = torch.randn(10, 2, 3, requires_grad=True)
    first, second = split_chunks(stream, 5)
    _, state = rnn(first)
    out, _ = rnn(second, detach_state(state))
    out.sum().backward()
    assert torch.all(stream.grad[:5] == 0), "no gradient crosses a detached boundary"
    assert stream.grad[5:].abs().sum() > 0
    # the weight gradient equals that of the second chunk run from a constant state
    grad_truncated = rnn.weight_hh_l0.grad.clone()
    rnn.zero_grad()
    out, _ = rnn(second.detach(), state.detach().clone())
    out.sum().backward()
    torch.testing.assert_close(rnn.weight_hh_l0.grad, grad_truncated)


def test_tuple_states_are_detached_too():
    net = Stacked([PairStateCell(3, 4)])
    _, state = net(torch.randn(4, 2, 3))
    assert state[0].requires_grad
    detached = detach_state(state)
    assert isinstance(detached, tuple) and not any(s.requires_grad for s in detached)
    assert detach_state(None) is None


def test_bad_chunk_length():
    with pytest.raises(ValueError, match="chunk length k must be a positive integer, got 0"):
        list(split_chunks(torch.zeros(3, 1, 1), 0))
