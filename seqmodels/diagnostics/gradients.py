"""``GradientDiagnostics``: see gradients vanish or explode through time, during training.

Every ``every_n_steps`` optimiser steps the callback records

* ``‖∂L/∂h_t‖`` for every time step t of that training batch (the total derivative of the
  batch loss with respect to the encoder's top-layer hidden state, see
  :mod:`seqmodels.diagnostics.stepping` for how it is exposed), and
* the global gradient norm before clipping (Lightning's ``on_before_optimizer_step`` runs
  before it clips) and after (measured on the gradients the optimiser has just used, from
  an optimiser step post-hook).

It logs ``diagnostics/grad_h_first``, ``diagnostics/grad_h_last``,
``diagnostics/grad_h_decay`` (log10 of last / first: 3 means the first step receives a
thousandth of the gradient of the last), ``diagnostics/grad_norm_before_clip`` and
``diagnostics/grad_norm_after_clip`` to every logger (at the recorded step), and at the
end of training writes to the run directory

* ``gradient_diagnostics.png``: heat map, training step × time step, log colour scale;
* ``gradient_diagnostics.csv``: one row per recorded step: step, norms before/after
  clipping, then ‖∂L/∂h_t‖ for t = 0 .. T-1;

and adds the heat map to TensorBoard when a ``TensorBoardLogger`` is on.

The diagnostic step is a real training step: the encoder runs one time step per call for
that batch only, which gives the same parameter gradients up to float rounding.
Works with ``torch.nn.RNN`` / ``GRU`` / ``LSTM``, ``ElmanRNN``, ``seqmodels.LSTM`` /
``GRU`` (both backends) and seqmodels' unidirectional layers over any cell. For a tuple
state (an LSTM's ``(h, c)``) the norms are of the hidden part h; the plot's title names
the encoder and its cell (:func:`encoder_label`).

Example::

    >>> import tempfile
    >>> import lightning as L
    >>> import torch
    >>> from seqmodels import ElmanRNN
    >>> from seqmodels.data import AddingDataModule
    >>> from seqmodels.tasks import SequenceClassifier
    >>> task = SequenceClassifier(ElmanRNN(2, 8, batch_first=True), num_classes=None,
    ...                           head="regression")
    >>> diag = GradientDiagnostics(every_n_steps=2)
    >>> dm = AddingDataModule(length=20, n_train=32, n_val=8, n_test=8, batch_size=8)
    >>> trainer = L.Trainer(max_steps=4, callbacks=[diag], logger=False,
    ...                     enable_checkpointing=False, enable_progress_bar=False,
    ...                     enable_model_summary=False, default_root_dir=tempfile.mkdtemp())
    >>> trainer.fit(task, datamodule=dm)
    >>> diag.steps, tuple(diag.matrix().shape)
    ([0, 2], (2, 20))
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from seqmodels.cells import RecurrentCell
from seqmodels.diagnostics.stepping import HiddenGradientProbe, SteppedModule, check_steppable
from seqmodels.layers import GRU, LSTM, ElmanRNN, SequenceLayer

RECURRENT_TYPES: tuple[type, ...] = (nn.RNNBase, ElmanRNN, LSTM, GRU, SequenceLayer)


def find_encoder(model: nn.Module, name: str | None = None) -> tuple[str, nn.Module]:
    """The recurrent module to diagnose: ``name`` (a dotted path such as ``"body.encoder"``)
    or the outermost recurrent module in registration order (the encoder of every task)."""
    if name:
        try:
            return name, model.get_submodule(name)
        except AttributeError as err:
            raise ValueError(f"no submodule {name!r} to diagnose: {err}") from None
    for found, module in model.named_modules():
        if isinstance(module, RECURRENT_TYPES):
            return found, module
    raise ValueError(
        f"{type(model).__name__} holds no recurrent module (nn.RNN/GRU/LSTM, ElmanRNN or a "
        "seqmodels layer) to diagnose; pass module='dotted.name'"
    )


def encoder_label(encoder: nn.Module) -> str:
    """What the plots call an encoder, naming its cell: ``"LSTM[bptt], h of (h, c)"``,
    ``"ElmanRNN[bptt] tanh"``, ``"Stacked[autograd] of GRUCell"``, ``"torch.nn.GRU"``."""
    name = type(encoder).__name__
    if isinstance(encoder, nn.RNNBase):
        name = f"torch.nn.{name}"
    backend = getattr(encoder, "backend", None)
    label = name + (f"[{backend}]" if backend else "")
    cells = [type(m).__name__ for m in encoder.modules() if isinstance(m, RecurrentCell)]
    if cells and not isinstance(encoder, ElmanRNN | LSTM | GRU):
        label += f" of {cells[0]}"  # the generic layers: say which cell they run
    act = getattr(encoder, "nonlinearity", None)
    if act:
        label += f" {act}"
    if isinstance(encoder, nn.LSTM | LSTM) or (cells and cells[0] == "LSTMCell"):
        label += ", h of (h, c)"  # the state is a tuple: the norms are of its hidden part
    return label


def total_grad_norm(parameters) -> float:
    """2-norm of all gradients together (parameters without a gradient are skipped)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.nn.utils.get_total_norm(grads, norm_type=2.0))


class GradientDiagnostics(Callback):
    """Records ‖∂L/∂h_t‖ per time step and the gradient norm before/after clipping.

    Args:
        every_n_steps: record on optimiser steps 0, N, 2N, ...
        module: dotted name of the encoder inside the LightningModule (default: found).
        dirpath: where the PNG and CSV go (default: the logger's run directory, else the
            trainer's ``default_root_dir``).
        filename: stem of the PNG and CSV files.
        tensorboard: add the heat map to a ``TensorBoardLogger`` when one is on.
        title: heat-map title (default: names the encoder).
    """

    def __init__(
        self,
        every_n_steps: int = 10,
        module: str | None = None,
        dirpath: str | os.PathLike | None = None,
        filename: str = "gradient_diagnostics",
        tensorboard: bool = True,
        title: str | None = None,
    ) -> None:
        if not isinstance(every_n_steps, int) or every_n_steps < 1:
            raise ValueError(f"every_n_steps must be a positive integer, got {every_n_steps!r}")
        self.every_n_steps = every_n_steps
        self.module_name = module
        self.dirpath = dirpath
        self.filename = filename
        self.tensorboard = tensorboard
        self.title = title
        self.steps: list[int] = []
        self.norms: list[Tensor] = []  # one (T,) per recorded step
        self.grad_norm_before: list[float] = []
        self.grad_norm_after: list[float] = []
        self.saved: list[Path] = []
        self._encoder: nn.Module | None = None
        self._encoder_label = ""
        self._stepped: SteppedModule | None = None
        self._probe: HiddenGradientProbe | None = None
        self._recording: int | None = None  # the global step being recorded
        self._pending: dict[str, Any] = {}
        self._handles: list[Any] = []

    # --- set-up ----------------------------------------------------------------------------

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        name, self._encoder = find_encoder(pl_module, self.module_name)
        check_steppable(self._encoder)
        self._encoder_label = encoder_label(self._encoder)
        for optimizer in trainer.optimizers:
            self._handles.append(optimizer.register_step_post_hook(self._after_step))

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        # Runs after the optimiser used the gradients: Lightning clipped them before the
        # step and zeroes them only in the next step's closure, so .grad is what was used.
        if self._recording is None or "before" not in self._pending:
            return
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self._pending["after"] = total_grad_norm(params)

    # --- one diagnostic step ---------------------------------------------------------------

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step % self.every_n_steps or step in self.steps or self._recording is not None:
            return
        self._recording = step
        self._pending = {}
        self._probe = HiddenGradientProbe()
        self._stepped = SteppedModule(self._encoder, self._probe).__enter__()

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor
    ) -> None:
        self._restore()  # the forward is done: later calls (validation, sampling) run fused

    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._probe is not None:
            self._pending["norms"] = self._probe.norms()
            self._probe = None

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if self._recording is not None and "norms" in self._pending:
            self._pending["before"] = total_grad_norm(pl_module.parameters())

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._restore()
        if self._recording is None or trainer.global_step == self._recording:
            return  # no record yet, or gradient accumulation: the step has not happened
        pending, step = self._pending, self._recording
        self._recording, self._pending = None, {}
        if "norms" not in pending:
            return  # the step was skipped (no loss): nothing to record
        norms = pending["norms"]
        before = pending.get("before", math.nan)
        after = pending.get("after", before)
        self.steps.append(step)
        self.norms.append(norms)
        self.grad_norm_before.append(before)
        self.grad_norm_after.append(after)
        first, last = float(norms[0]), float(norms[-1])
        decay = math.log10(last / first) if first > 0 and last > 0 else math.nan
        values = {
            "diagnostics/grad_h_first": first,
            "diagnostics/grad_h_last": last,
            "diagnostics/grad_h_decay": decay,
            "diagnostics/grad_norm_before_clip": before,
            "diagnostics/grad_norm_after_clip": after,
        }
        # Straight to the loggers: self.log(on_step=True) would keep only the steps that
        # fall on log_every_n_steps, and these records are already every N steps.
        for logger in trainer.loggers:
            logger.log_metrics(values, step=step)

    def _restore(self) -> None:
        if self._stepped is not None:
            self._stepped.__exit__(None, None, None)
            self._stepped = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore()
        self._remove_hooks()

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # --- results ---------------------------------------------------------------------------

    def matrix(self) -> Tensor:
        """``(recorded steps, T_max)`` float64; NaN where a batch was shorter than T_max."""
        width = max((len(n) for n in self.norms), default=0)
        out = torch.full((len(self.norms), width), math.nan, dtype=torch.float64)
        for i, n in enumerate(self.norms):
            out[i, : len(n)] = n
        return out

    def figure(self, title: str | None = None):
        from seqmodels.diagnostics.plots import gradient_heatmap

        title = title or self.title or f"‖∂L/∂h_t‖ — {self._encoder_label}".rstrip(" —")
        return gradient_heatmap(self.matrix(), self.steps, title=title)

    def run_dir(self, trainer: L.Trainer) -> Path:
        if self.dirpath is not None:
            return Path(self.dirpath)
        return Path(trainer.log_dir or trainer.default_root_dir)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()
        self._remove_hooks()
        if not self.steps or not trainer.is_global_zero:
            return
        directory = self.run_dir(trainer)
        self.saved = [self.save_csv(directory / f"{self.filename}.csv")]
        from seqmodels.diagnostics.plots import save_figure

        fig = self.figure()
        if self.tensorboard:
            from lightning.pytorch.loggers import TensorBoardLogger

            for logger in trainer.loggers:
                if isinstance(logger, TensorBoardLogger):
                    logger.experiment.add_figure(
                        "diagnostics/grad_h_heatmap", fig, trainer.global_step, close=False
                    )
        self.saved.append(save_figure(fig, directory / f"{self.filename}.png"))

    def save_csv(self, path: str | os.PathLike) -> Path:
        """One row per recorded step: step, grad norms before/after clipping, ‖∂L/∂h_t‖."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        matrix = self.matrix()
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(
                ["step", "grad_norm_before_clip", "grad_norm_after_clip"]
                + [f"h_{t}" for t in range(matrix.shape[1])]
            )
            for i, step in enumerate(self.steps):
                row = [step, self.grad_norm_before[i], self.grad_norm_after[i]]
                writer.writerow(row + [f"{v:.6e}" for v in matrix[i].tolist()])
        return path

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "norms": [n.tolist() for n in self.norms],
            "grad_norm_before": self.grad_norm_before,
            "grad_norm_after": self.grad_norm_after,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps = list(state_dict.get("steps", []))
        self.norms = [torch.tensor(n, dtype=torch.float64) for n in state_dict.get("norms", [])]
        self.grad_norm_before = list(state_dict.get("grad_norm_before", []))
        self.grad_norm_after = list(state_dict.get("grad_norm_after", []))


def load_csv(path: str | os.PathLike) -> dict[str, Any]:
    """Read :meth:`GradientDiagnostics.save_csv` back: steps, norms matrix, before/after."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    body = rows[1:]
    return {
        "steps": [int(r[0]) for r in body],
        "grad_norm_before": [float(r[1]) for r in body],
        "grad_norm_after": [float(r[2]) for r in body],
        "norms": torch.tensor([[float(v) for v in r[3:]] for r in body], dtype=torch.float64),
    }
