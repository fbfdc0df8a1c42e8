"""Friendly checks for graded lesson cells.

A bare ``assert x == 3`` tells a student only that something is wrong. These helpers say *what*
is wrong and *what to try*, and print a tick when a check passes, so a student running the visible
tests sees progress. Every failure raises :class:`CheckFailed`, a kind of ``AssertionError``, which
nbgrader counts as a failed test cell::

    from tinyml_edu import checks
    checks.check_shape(features, (None, 49, 40), "features", hint="did you forget the batch axis?")
    checks.check_close(scale, 0.0235, "scale", rtol=0.01)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


class CheckFailed(AssertionError):
    """A graded check did not pass; the message says what is wrong and what to try."""


def _fail(name: str, problem: str, hint: str | None) -> CheckFailed:
    message = f"✗ {name}: {problem}"
    if hint:
        message += f"\n  Try: {hint}"
    return CheckFailed(message)


def _passed(name: str, what: str, quiet: bool) -> None:
    if not quiet:
        print(f"✓ {name} {what}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_answered(value: Any, name: str, hint: str | None = None, quiet: bool = False) -> None:
    """The student replaced the placeholder (``None`` or ``...``) with an answer."""
    if value is None or value is Ellipsis:
        hint = hint or f"write your answer in the cell that defines {name}"
        raise _fail(name, "has no answer yet", hint)
    _passed(name, "has an answer", quiet)


def check_type(value: Any, expected: type | tuple[type, ...], name: str, hint: str | None = None,
               quiet: bool = False) -> None:
    """``value`` is an instance of ``expected``."""
    if not isinstance(value, expected):
        names = (expected,) if isinstance(expected, type) else expected
        wanted = " or ".join(t.__name__ for t in names)
        raise _fail(name, f"should be a {wanted}, but it is a {type(value).__name__}", hint)
    _passed(name, f"is a {type(value).__name__}", quiet)


def check_shape(array: Any, expected: Sequence[int | None], name: str, hint: str | None = None,
                quiet: bool = False) -> None:
    """``array`` has shape ``expected``; ``None`` in ``expected`` matches any length."""
    shape = getattr(array, "shape", None)
    if shape is None:
        raise _fail(name, f"should be an array, but it is a {type(array).__name__}",
                    hint or "convert it with np.asarray(...)")
    shown = "(" + ", ".join("any" if d is None else str(d) for d in expected) + ")"
    if len(shape) != len(expected) or any(
            e is not None and s != e for s, e in zip(shape, expected, strict=True)):
        raise _fail(name, f"has shape {tuple(shape)}, expected {shown}", hint)
    _passed(name, f"has shape {tuple(shape)}", quiet)


def check_equal(value: Any, expected: Any, name: str, hint: str | None = None,
                quiet: bool = False) -> None:
    """``value == expected`` (element-wise for arrays)."""
    equal = (np.array_equal(np.asarray(value), np.asarray(expected))
             if isinstance(value, np.ndarray) or isinstance(expected, np.ndarray)
             else value == expected)
    if not equal:
        raise _fail(name, f"is {_short(value)}, expected {_short(expected)}", hint)
    _passed(name, f"is {_short(value)}", quiet)


def check_close(value: Any, expected: Any, name: str, rtol: float = 1e-5, atol: float = 1e-8,
                hint: str | None = None, quiet: bool = False) -> None:
    """``value`` is numerically close to ``expected`` (scalars or arrays of the same shape)."""
    try:
        got, want = np.asarray(value, dtype=float), np.asarray(expected, dtype=float)
    except (TypeError, ValueError):
        raise _fail(name, f"should be a number, but it is {_short(value)}", hint) from None
    if got.shape != want.shape:
        raise _fail(name, f"has shape {got.shape}, expected {want.shape}", hint)
    if not np.all(np.isfinite(got)):
        raise _fail(name, "contains NaN or infinity", hint or "look for a division by zero")
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        if got.ndim == 0:
            problem = f"is {float(got):.6g}, expected about {float(want):.6g}"
        else:
            worst = int(np.argmax(np.abs(got - want)))
            problem = (f"differs from the expected values; largest difference at flat index "
                       f"{worst}: {got.flat[worst]:.6g} instead of {want.flat[worst]:.6g}")
        raise _fail(name, problem, hint)
    _passed(name, "is right", quiet)


def check_between(value: Any, low: float, high: float, name: str, hint: str | None = None,
                  quiet: bool = False) -> None:
    """``low <= value <= high``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _fail(name, f"should be a number, but it is {_short(value)}", hint) from None
    if not low <= number <= high:
        raise _fail(name, f"is {number:.6g}, expected {_range_words(low, high)}", hint)
    _passed(name, f"is {number:.6g} ({_range_words(low, high)})", quiet)


def _range_words(low: float, high: float) -> str:
    """The bounds in words: "at most 3000", never "between -inf and 3000"."""
    if np.isinf(low) and np.isinf(high):
        return "any number"
    if np.isinf(low):
        return f"at most {high:g}"
    if np.isinf(high):
        return f"at least {low:g}"
    return f"between {low:g} and {high:g}"


def check_at_least(value: Any, low: float, name: str, hint: str | None = None,
                   quiet: bool = False) -> None:
    """``value >= low``: a score or accuracy that must reach a bar."""
    check_between(value, low, float("inf"), name, hint, quiet)


def check_at_most(value: Any, high: float, name: str, hint: str | None = None,
                  quiet: bool = False) -> None:
    """``value <= high``: a size, an arena, a loss that must stay under a budget."""
    check_between(value, float("-inf"), high, name, hint, quiet)


def check_in(value: Any, options: Iterable[Any], name: str, hint: str | None = None,
             quiet: bool = False) -> None:
    """``value`` is one of ``options``."""
    options = list(options)
    if value not in options:
        raise _fail(name, f"is {_short(value)}, expected one of {_short(options)}", hint)
    _passed(name, f"is {_short(value)}", quiet)


def check_true(condition: Any, message: str, hint: str | None = None) -> None:
    """A condition that has no better-fitting check; ``message`` says what should hold."""
    if not condition:
        raise _fail("check", message, hint)
    print(f"✓ {message}")
