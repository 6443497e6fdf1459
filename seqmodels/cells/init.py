"""Initialisation schemes for Elman weights, by name.

``"default"`` is ``torch.nn.RNN``'s: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)).
``"identity"`` is the IRNN of Le, Jaitly & Hinton (2015): W_hh = I and zero biases, meant
for ReLU networks; W_ih keeps the default distribution.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

INIT_SCHEMES = ("default", "xavier", "kaiming", "orthogonal", "identity")


def check_init(init: str) -> str:
    if init not in INIT_SCHEMES:
        raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INIT_SCHEMES)}")
    return init


@torch.no_grad()
def init_elman_(
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None,
    bias_hh: Tensor | None,
    scheme: str = "default",
    nonlinearity: str = "tanh",
) -> None:
    """Initialise one Elman layer's parameters in place with the named scheme.

    ==============  ==========================================  ==============
    scheme          weights                                     biases
    ==============  ==========================================  ==============
    default         U(-1/sqrt(H), 1/sqrt(H)) (as nn.RNN)        same
    xavier          xavier_uniform (gain of the nonlinearity)   0
    kaiming         kaiming_uniform (fan_in, the nonlinearity)  0
    orthogonal      W_ih xavier_uniform, W_hh orthogonal        0
    identity        W_ih default, W_hh = I (IRNN)               0
    ==============  ==========================================  ==============
    """
    check_init(scheme)
    hidden_size = weight_hh.shape[0]
    bound = 1.0 / math.sqrt(hidden_size)
    biases = [b for b in (bias_ih, bias_hh) if b is not None]
    if scheme == "default":
        for tensor in (weight_ih, weight_hh, *biases):
            nn.init.uniform_(tensor, -bound, bound)
        return
    gain = nn.init.calculate_gain(nonlinearity)
    if scheme == "xavier":
        nn.init.xavier_uniform_(weight_ih, gain=gain)
        nn.init.xavier_uniform_(weight_hh, gain=gain)
    elif scheme == "kaiming":
        nn.init.kaiming_uniform_(weight_ih, nonlinearity=nonlinearity)
        nn.init.kaiming_uniform_(weight_hh, nonlinearity=nonlinearity)
    elif scheme == "orthogonal":
        nn.init.xavier_uniform_(weight_ih, gain=gain)
        nn.init.orthogonal_(weight_hh)
    elif scheme == "identity":
        nn.init.uniform_(weight_ih, -bound, bound)
        weight_hh.copy_(torch.eye(hidden_size, dtype=weight_hh.dtype, device=weight_hh.device))
    for bias in biases:
        bias.zero_()
