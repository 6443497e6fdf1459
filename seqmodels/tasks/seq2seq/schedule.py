"""Teacher-forcing ratio schedules for scheduled sampling (Bengio et al., 2015)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

SCHEDULES = ("constant", "linear", "exponential", "inverse_sigmoid")


class TeacherForcingSchedule:
    """The probability of feeding the gold token at training step ``i``.

    * ``"constant"``: ``start``;
    * ``"linear"``: from ``start`` down to ``end`` over ``steps`` steps, then ``end``;
    * ``"exponential"``: ``max(end, start * decay ** i)``;
    * ``"inverse_sigmoid"``: ``k / (k + exp(i / k))``, floored at ``end``.

    Example::

        >>> s = TeacherForcingSchedule("linear", start=1.0, end=0.5, steps=100)
        >>> s(0), s(50), s(1000)
        (1.0, 0.75, 0.5)
    """

    def __init__(
        self,
        kind: str = "constant",
        start: float = 1.0,
        end: float = 0.0,
        steps: int = 1000,
        decay: float = 0.999,
        k: float = 100.0,
    ) -> None:
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {kind!r}")
        for name, value in (("start", start), ("end", end)):
            if not 0 <= value <= 1:
                raise ValueError(f"teacher forcing {name} must be in [0, 1], got {value!r}")
        self.kind, self.start, self.end = kind, start, end
        self.steps, self.decay, self.k = steps, decay, k

    @classmethod
    def from_spec(
        cls, spec: float | Mapping[str, Any] | TeacherForcingSchedule
    ) -> TeacherForcingSchedule:
        """A constant ratio, a mapping of constructor arguments, or a schedule."""
        if isinstance(spec, TeacherForcingSchedule):
            return spec
        if isinstance(spec, Mapping):
            return cls(**dict(spec))
        return cls("constant", start=float(spec))

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return self.start
        if self.kind == "linear":
            frac = min(1.0, step / max(1, self.steps))
            return self.start + (self.end - self.start) * frac
        if self.kind == "exponential":
            return max(self.end, self.start * self.decay**step)
        return max(self.end, self.k / (self.k + math.exp(min(step / self.k, 700.0))))
