"""The user cell of docs/cells.md, written only as its step: what ``seqmodels-bench
cell=user`` runs on the engine and on the step loop, beside ``nn.LSTM``.

``tests/test_docs.py`` checks that the class below is, line for line, the one on the page.
"""

from __future__ import annotations

import torch

from seqmodels.cells.base import ProjectedCell


class CIFGCell(ProjectedCell):
    """An LSTM whose input gate is tied to its forget gate: i = 1 - f (Greff et al. 2017)."""

    gates = 3  # f, g, o: the projections are 3 * hidden_size wide
    sums_projections = True  # the step reads W_ih x + b + W_hh h as one sum

    def initial_state(self, batch_size, like):
        zeros = like.new_zeros(batch_size, self.hidden_size)
        return zeros, zeros.clone()  # (h, c)

    def step(self, z, _, state):
        h, c = state
        f, g, o = z.chunk(3, 1)  # (N, H) each
        f = torch.sigmoid(f)
        c = f * c + (1 - f) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c
