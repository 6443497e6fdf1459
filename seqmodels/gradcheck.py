"""Check a module's analytical gradients against central finite differences, in float64.

The same check the textbook BPTT derivations end with: perturb one parameter entry by
``±eps``, watch the loss move, and compare ``(L(θ+eps) - L(θ-eps)) / 2eps`` with what
``backward`` says. Errors are relative, ``|a - n| / max(|a| + |n|, 1e-8)``: around 1e-7 or
less is right; 1e-2 or more means the backward pass is wrong.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence


@dataclass
class GradCheckReport:
    """Largest relative error per checked tensor (parameters by name, inputs as ``input[i]``)."""

    errors: dict[str, float] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)  # entries compared per tensor

    @property
    def max_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    def passed(self, tolerance: float = 1e-5) -> bool:
        return self.max_error <= tolerance

    def __str__(self) -> str:
        width = max((len(name) for name in self.errors), default=4)
        rows = [f"{'tensor':<{width}}  entries  max relative error"]
        for name, error in self.errors.items():
            rows.append(f"{name:<{width}}  {self.checked[name]:>7}  {error:.3e}")
        return "\n".join(rows)


def _to_double(value):
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.detach().double().requires_grad_(True)
    if isinstance(value, PackedSequence):
        return value._replace(data=value.data.detach().double().requires_grad_(True))
    return value


def _flatten_outputs(value) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, PackedSequence):
        return [value.data]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _flatten_outputs(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _flatten_outputs(item)]
    return []


def gradient_check(
    module: nn.Module,
    *inputs,
    eps: float = 1e-6,
    max_entries: int | None = 50,
    check_inputs: bool = True,
    seed: int = 0,
    **kwargs,
) -> GradCheckReport:
    """Compare ``module``'s gradients with central finite differences, in float64.

    The loss is a fixed random linear function of every floating-point output
    (``sum_k <R_k, output_k>``), so every output entry matters. The module is copied,
    converted to float64 and put in eval mode (dropout off); the original is untouched.
    ``max_entries`` caps how many entries per tensor are perturbed (a seeded random sample;
    ``None`` checks all). Extra keyword arguments go to the module's forward.

    Example::

        >>> import torch
        >>> from seqmodels import ElmanRNN, gradient_check
        >>> report = gradient_check(ElmanRNN(3, 4, backend="bptt"), torch.randn(5, 2, 3))
        >>> report.passed()
        True
        >>> sorted(report.errors)[:2]
        ['bias_hh_l0', 'bias_ih_l0']
    """
    model = copy.deepcopy(module).double().eval()
    args = [_to_double(x) for x in inputs]
    generator = torch.Generator().manual_seed(seed)

    outputs = _flatten_outputs(model(*args, **kwargs))
    if not outputs:
        raise ValueError(f"{type(module).__name__} returned no floating-point output to check")
    weights = [
        torch.randn(o.shape, generator=generator, dtype=o.dtype).to(o.device) for o in outputs
    ]

    def loss() -> Tensor:
        outs = _flatten_outputs(model(*args, **kwargs))
        return sum((o * w).sum() for o, w in zip(outs, weights, strict=True))

    named: list[tuple[str, Tensor]] = [
        (n, p) for n, p in model.named_parameters() if p.requires_grad
    ]
    if check_inputs:
        for i, arg in enumerate(args):
            tensor = arg.data if isinstance(arg, PackedSequence) else arg
            if isinstance(tensor, Tensor) and tensor.requires_grad:
                named.append((f"input[{i}]", tensor))
    analytical = torch.autograd.grad(loss(), [t for _, t in named], allow_unused=True)

    report = GradCheckReport()
    with torch.no_grad():
        for (name, tensor), grad in zip(named, analytical, strict=True):
            grad = torch.zeros_like(tensor) if grad is None else grad
            flat, flat_grad = tensor.view(-1), grad.reshape(-1)
            count = flat.numel()
            if max_entries is not None and count > max_entries:
                index = torch.randperm(count, generator=generator)[:max_entries].tolist()
            else:
                index = range(count)
            worst = 0.0
            for i in index:
                original = flat[i].item()
                flat[i] = original + eps
                plus = loss().item()
                flat[i] = original - eps
                minus = loss().item()
                flat[i] = original
                numeric = (plus - minus) / (2 * eps)
                exact = flat_grad[i].item()
                worst = max(worst, abs(exact - numeric) / max(abs(exact) + abs(numeric), 1e-8))
            report.errors[name] = worst
            report.checked[name] = len(index)
    return report
