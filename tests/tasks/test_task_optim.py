import functools

import lightning as L
import pytest
import torch
from task_helpers import loader, trainer
from test_task_classify import make_batches, make_task

from seqmodels.tasks import ExponentialDecayLR, build_optimizer, build_scheduler


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "adagrad"])
def test_optimizers_by_name(name):
    params = [torch.nn.Parameter(torch.zeros(2))]
    opt = build_optimizer({"name": name, "lr": 0.1}, params)
    assert opt.param_groups[0]["lr"] == 0.1
    sgd = build_optimizer({"name": "sgd", "lr": 0.1, "momentum": 0.9}, params)
    assert sgd.param_groups[0]["momentum"] == 0.9
    with pytest.raises(ValueError, match="one of adagrad, adam, adamw, rmsprop, sgd; got 'lbfgs'"):
        build_optimizer({"name": "lbfgs"}, params)


def test_exponential_decay_formula_and_other_schedules():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    sched = build_scheduler({"name": "exponential", "decay_rate": 0.5, "decay_steps": 4}, opt)
    for epoch in range(1, 9):
        opt.step()
        sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(0.2 * 0.5 ** (epoch / 4))
    assert isinstance(sched, ExponentialDecayLR)
    step = build_scheduler({"name": "step", "step_size": 2, "gamma": 0.1}, opt)
    cosine = build_scheduler({"name": "cosine", "T_max": 10}, opt)
    assert isinstance(step, torch.optim.lr_scheduler.StepLR)
    assert isinstance(cosine, torch.optim.lr_scheduler.CosineAnnealingLR)


class _Recorder(L.Callback):
    def __init__(self):
        self.grad_norms, self.lrs = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.grad_norms.append(float(trainer.callback_metrics["train/grad_norm"]))

    def on_train_epoch_end(self, trainer, pl_module):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_partial_factories_clipping_and_grad_norm_logged_each_step():
    task = make_task(
        optimizer=functools.partial(torch.optim.SGD, lr=0.5, momentum=0.9),
        scheduler=functools.partial(ExponentialDecayLR, decay_rate=0.5, decay_steps=1),
    )
    recorder = _Recorder()
    fit = trainer(max_epochs=3, gradient_clip_val=0.1, callbacks=[recorder])
    fit.fit(task, loader(make_batches(4)))
    assert len(recorder.grad_norms) == 12 and all(g > 0 for g in recorder.grad_norms)
    assert recorder.lrs == pytest.approx([0.25, 0.125, 0.0625])
