"""The built-in cells' kernels as functions of plain tensors, for gradcheck and transforms.

Each builds its cell on the meta device (no initialisation, no random numbers: these run
under ``vmap``) and runs it with every parameter replaced by the given tensors."""

from __future__ import annotations

import torch

from seqmodels import ElmanCell, GRUCell, LSTMCell
from seqmodels.kernels import definition, run_kernel

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _weights(weights):
    return {n: w for n, w in zip(NAMES, weights, strict=True) if w is not None}


def elman_bptt(x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", lengths=None, reverse=False):
    bias = b_ih is not None
    cell = ElmanCell(x.shape[-1], h0.shape[-1], bias, nonlinearity, device="meta")
    return run_kernel(cell, x, h0, _weights((w_ih, w_hh, b_ih, b_hh)), lengths, reverse)


def lstm_bptt(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False):
    cell = LSTMCell(x.shape[-1], h0.shape[-1], b_ih is not None, device="meta")
    out, (h_n, c_n) = run_kernel(
        cell, x, (h0, c0), _weights((w_ih, w_hh, b_ih, b_hh)), lengths, reverse
    )
    return out, h_n, c_n


def gru_bptt(x, h0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False):
    cell = GRUCell(x.shape[-1], h0.shape[-1], b_ih is not None, device="meta")
    return run_kernel(cell, x, h0, _weights((w_ih, w_hh, b_ih, b_hh)), lengths, reverse)


def lstm_definition(x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths=None, reverse=False):
    """The LSTM cell's definition walked by the engine, out of place: the reference."""
    cell = LSTMCell(x.shape[-1], h0.shape[-1], b_ih is not None, device="meta")
    with torch.no_grad():
        return definition(cell, x, (h0, c0), (w_ih, w_hh, b_ih, b_hh), lengths, reverse)
