"""Check a module's analytical gradients against central finite differences, in float64.

The same check the textbook BPTT derivations end with: perturb one parameter entry by
``±eps``, watch the loss move, and compare ``n = (L(θ+eps) - L(θ-eps)) / 2eps`` with what
``backward`` says, ``a``. The loss is ``L = Σ_k <R_k, output_k>`` for fixed random ``R_k``.

**Why the default eps is 1e-5.** A central difference misses the derivative in two ways.
Truncation: about ``eps² |L'''| / 6``, which shrinks with ``eps``. Rounding: ``L`` is a
float64 sum of terms of total size ``S = Σ_k |R_k * output_k|``, each evaluation is off by
about ``ε S`` (``ε = 2.2e-16``), so the quotient is off by about ``noise = ε S / eps``,
which grows as ``eps`` shrinks. The sum is smallest near ``eps = (3 ε S / |L'''|)^(1/3)``:
a few 1e-5 for an RNN whose ``S`` is in the tens to hundreds and whose third derivatives
are of order one. The old default ``1e-6`` sat in the rounding regime, where a correct
LSTM read 7e-5 and ``nn.LSTM`` failed for most seeds.

**Why the error is scale-aware.** Even at the best ``eps``, an entry whose gradient is
about the size of the rounding noise (a saturated gate, a weight that barely matters) has
no meaningful *relative* error. So::

    error = |a - n| / max(|a| + |n|, noise / 1e-6)

is the relative error wherever the gradient stands well above the noise, and reads
``1e-6`` where ``a`` and ``n`` differ by exactly the noise. Under the default tolerance
``1e-5`` an entry fails when it is off by more than 1e-5 relatively *and* by more than
ten times the rounding noise absolutely; a real mistake in a backward pass is both (a
10% error reads about 5e-2). The report keeps ``eps`` and ``noise``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

#: float64's machine epsilon: the relative rounding error of one evaluation of the loss.
FLOAT64_EPS = torch.finfo(torch.float64).eps
#: Default step: near (3 ε S)^(1/3) for loss magnitudes S of 10 to 1000 (see the module doc).
DEFAULT_EPS = 1e-5
#: The error an absolute discrepancy of exactly the rounding noise reads as.
NOISE_READS_AS = 1e-6


def scaled_error(analytical: float, numeric: float, noise: float) -> float:
    """``|a - n| / max(|a| + |n|, noise / 1e-6)``: the relative error, above the noise.

    Example:
        >>> round(scaled_error(1.0, 1.0 + 1e-8, noise=1e-12), 12)  # large entry: relative
        5e-09
        >>> scaled_error(1e-9, 0.0, noise=1e-9)  # an entry at the noise level: tiny error
        1e-06
        >>> scaled_error(1e-2, 1.1e-2, noise=1e-9) > 1e-2  # a 10% mistake stands out
        True
    """
    floor = max(noise / NOISE_READS_AS, 1e-300)
    return abs(analytical - numeric) / max(abs(analytical) + abs(numeric), floor)


@dataclass
class GradCheckReport:
    """Largest relative error per checked tensor (parameters by name, inputs as ``input[i]``)."""

    errors: dict[str, float] = field(default_factory=dict)
    checked: dict[str, int] = field(default_factory=dict)  # entries compared per tensor
    eps: float = DEFAULT_EPS
    noise: float = 0.0  # rounding error of one difference quotient: ε S / eps

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
    eps: float = DEFAULT_EPS,
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
    ``None`` checks all). Extra keyword arguments go to the module's forward. Errors are
    scale-aware relative errors (:func:`scaled_error`; the module doc says why), and the
    default ``eps`` balances truncation against float64 rounding.

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
    with torch.no_grad():
        outs = _flatten_outputs(model(*args, **kwargs))
        magnitude = sum(float((o * w).abs().sum()) for o, w in zip(outs, weights, strict=True))
    noise = FLOAT64_EPS * magnitude / eps

    report = GradCheckReport(eps=eps, noise=noise)
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
                worst = max(worst, scaled_error(exact, numeric, noise))
            report.errors[name] = worst
            report.checked[name] = len(index)
    return report
