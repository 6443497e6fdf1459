"""Exception types that satisfy both seqmodels' contract and ``torch.nn.RNN``'s.

``torch.nn.RNN`` raises ``RuntimeError`` for shapes it cannot run (wrong input size, hidden
state shape, empty sequences) and ``TypeError`` for arguments of the wrong type. Code written
against seqmodels catches ``ValueError`` for both. These classes are both at once, so a
drop-in module raises what either kind of caller expects::

    >>> issubclass(ShapeError, RuntimeError) and issubclass(ShapeError, ValueError)
    True
    >>> issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ValueError)
    True
"""

from __future__ import annotations


class ShapeError(ValueError, RuntimeError):
    """A tensor's shape, dtype or device does not fit (``RuntimeError`` in ``torch.nn.RNN``)."""


class ArgumentTypeError(ValueError, TypeError):
    """A constructor argument has the wrong type (``TypeError`` in ``torch.nn.RNN``)."""


class StateTypeError(ArgumentTypeError, RuntimeError):
    """A state of the wrong kind: a Tensor where ``(h_0, c_0)`` is expected, a tuple of the
    wrong length, a tuple where a Tensor is expected. A ``TypeError`` by nature and a
    ``RuntimeError`` where ``torch.nn.LSTM`` raises one for the same call."""


def check_positive_int(name: str, value: object) -> int:
    """``value`` as a positive ``int``; a bool, float or string is refused (as ``nn.RNN``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(
            f"{name} should be of type int, got: {type(value).__name__} ({value!r})"
        )
    if value <= 0:
        raise ValueError(
            f"{name} must be greater than zero ({name} must be a positive integer, got {value!r})"
        )
    return value


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a ``bool``; ``0``, ``1`` or ``"True"`` are refused (as ``nn.RNN``)."""
    if not isinstance(value, bool):
        raise ArgumentTypeError(
            f"{name} should be of type bool, got: {type(value).__name__} ({value!r})"
        )
    return value
