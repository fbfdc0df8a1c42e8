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

import ast
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from tinyml_edu.errors import TinyMLEduError
from tinyml_edu.i18n import _


class CheckFailed(TinyMLEduError, AssertionError):
    """A graded check did not pass; the message says what is wrong and what to try."""


def _fail(name: str, problem: str, hint: str | None) -> CheckFailed:
    message = f"✗ {name}: {problem}"
    if hint:
        message += "\n  " + _("Try: {hint}").format(hint=hint)
    return CheckFailed(message)


def _passed(name: str, what: str, quiet: bool) -> None:
    if not quiet:
        print(f"✓ {name} {what}")  # ``what`` comes translated


def _not_a_number() -> str:  # looked up when shown, in the language of that moment
    return _("should be a number, but it is {value}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_answered(value: Any, name: str, hint: str | None = None, quiet: bool = False) -> None:
    """The student replaced the placeholder (``None`` or ``...``) with an answer."""
    if value is None or value is Ellipsis:
        hint = hint or _("write your answer in the cell that defines {name}").format(name=name)
        raise _fail(name, _("has no answer yet"), hint)
    _passed(name, _("has an answer"), quiet)


def check_type(value: Any, expected: type | tuple[type, ...], name: str, hint: str | None = None,
               quiet: bool = False) -> None:
    """``value`` is an instance of ``expected``."""
    if not isinstance(value, expected):
        names = (expected,) if isinstance(expected, type) else expected
        wanted = _(" or ").join(t.__name__ for t in names)
        raise _fail(name, _("should have type {wanted}, but it has type {actual}").format(
            wanted=wanted, actual=type(value).__name__), hint)
    _passed(name, _("has type {actual}").format(actual=type(value).__name__), quiet)


def check_shape(array: Any, expected: Sequence[int | None], name: str, hint: str | None = None,
                quiet: bool = False) -> None:
    """``array`` has shape ``expected``; ``None`` in ``expected`` matches any length."""
    shape = getattr(array, "shape", None)
    if shape is None:
        raise _fail(name, _("should be an array, but it has type {actual}").format(
            actual=type(array).__name__), hint or _("convert it with np.asarray(...)"))
    shown = "(" + ", ".join(_("any") if d is None else str(d) for d in expected) + ")"
    if len(shape) != len(expected) or any(
            e is not None and s != e for s, e in zip(shape, expected, strict=True)):
        raise _fail(name, _("has shape {shape}, expected {expected}").format(
            shape=tuple(shape), expected=shown), hint)
    _passed(name, _("has shape {shape}").format(shape=tuple(shape)), quiet)


def check_equal(value: Any, expected: Any, name: str, hint: str | None = None,
                quiet: bool = False, reveal: bool = True) -> None:
    """``value == expected`` (element-wise for arrays). ``reveal=False`` keeps the expected value
    out of the message, for answers the student must work out (a visible test that prints the
    answer turns "compute it by hand" into "copy it")."""
    equal = (np.array_equal(np.asarray(value), np.asarray(expected))
             if isinstance(value, np.ndarray) or isinstance(expected, np.ndarray)
             else value == expected)
    if not equal:
        wanted = (_("expected {expected}").format(expected=_short(expected)) if reveal
                  else _("which is not right"))
        raise _fail(name, _("is {value}, {wanted}").format(value=_short(value), wanted=wanted),
                    hint)
    _passed(name, _("is {value}").format(value=_short(value)), quiet)


def check_close(value: Any, expected: Any, name: str, rtol: float = 1e-5, atol: float = 1e-8,
                hint: str | None = None, quiet: bool = False) -> None:
    """``value`` is numerically close to ``expected`` (scalars or arrays of the same shape)."""
    try:
        got, want = np.asarray(value, dtype=float), np.asarray(expected, dtype=float)
    except (TypeError, ValueError):
        raise _fail(name, _not_a_number().format(value=_short(value)), hint) from None
    if got.shape != want.shape:
        raise _fail(name, _("has shape {shape}, expected {expected}").format(
            shape=got.shape, expected=want.shape), hint)
    if not np.all(np.isfinite(got)):
        raise _fail(name, _("contains NaN or infinity"),
                    hint or _("look for a division by zero"))
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        if got.ndim == 0:
            problem = _("is {value}, expected about {expected}").format(
                value=f"{float(got):.6g}", expected=f"{float(want):.6g}")
        else:
            worst = int(np.argmax(np.abs(got - want)))
            problem = _("differs from the expected values; largest difference at flat index "
                        "{index}: {value} instead of {expected}").format(
                index=worst, value=f"{got.flat[worst]:.6g}", expected=f"{want.flat[worst]:.6g}")
        raise _fail(name, problem, hint)
    _passed(name, _("is right"), quiet)


def check_between(value: Any, low: float, high: float, name: str, hint: str | None = None,
                  quiet: bool = False) -> None:
    """``low <= value <= high``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _fail(name, _not_a_number().format(value=_short(value)), hint) from None
    if not low <= number <= high:
        raise _fail(name, _("is {value}, expected {range}").format(
            value=f"{number:.6g}", range=_range_words(low, high)), hint)
    _passed(name, _("is {value} ({range})").format(
        value=f"{number:.6g}", range=_range_words(low, high)), quiet)


def _range_words(low: float, high: float) -> str:
    """The bounds in words: "at most 3000", never "between -inf and 3000"."""
    if np.isinf(low) and np.isinf(high):
        return _("any number")
    if np.isinf(low):
        return _("at most {high}").format(high=f"{high:g}")
    if np.isinf(high):
        return _("at least {low}").format(low=f"{low:g}")
    return _("between {low} and {high}").format(low=f"{low:g}", high=f"{high:g}")


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
        raise _fail(name, _("is {value}, expected one of {options}").format(
            value=_short(value), options=_short(options)), hint)
    _passed(name, _("is {value}").format(value=_short(value)), quiet)


def check_true(condition: Any, message: str, hint: str | None = None) -> None:
    """A condition that has no better-fitting check; ``message`` says what should hold."""
    if not condition:
        raise _fail("check", message, hint)
    print(f"✓ {message}")


# --- Did the student compute it, or copy it? ------------------------------------------------
# A value test cannot tell an answer computed by the student from the same value copied from the
# library function the test compares against, or from another variable that holds it. These
# helpers read the notebook's own code instead: which names each answer was computed from.


def _history_cells() -> list[str]:
    """The source of every cell run so far in this kernel, oldest first, without the current one."""
    try:
        from IPython import get_ipython
    except ImportError:  # not in a notebook: no history to read
        return []
    shell = get_ipython()
    if shell is None:
        return []
    cells = [shell.transform_cell(c) for c in shell.user_ns.get("In", [])[1:]]
    return cells[:-1]  # In[-1] is the cell running this check


_COPIES = "<copies>"  # key of the taint map: the notebook variables that hold the answer


def _bind(taint: dict[str, set[str]], name: str, used: set[str]) -> None:
    taint[name] = used | ({name} & taint.get(_COPIES, set()))


def _used(node: ast.AST, avoid: set[str], taint: dict[str, set[str]]) -> set[str]:
    """Names in ``avoid`` that ``node`` uses: as ``module.name``, imported, or through a variable
    computed from one of them. The taint map holds every name the notebook bound, each with the
    avoided names it came from; a name in ``avoid`` that the notebook never bound is the library's
    (a star import), one it bound itself (``def hz_to_mel``) is the student's."""
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr in avoid:
            found.add(sub.attr)
        elif isinstance(sub, ast.Name):
            found |= taint.get(sub.id, {sub.id} & avoid)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and sub.value in avoid:
            found.add(sub.value)  # getattr(module, "name")
    return found


def _targets(node: ast.AST) -> list[str]:
    """Variables a statement's target writes: ``x``, ``a, b``, and the ``x`` of ``x[i]``/``x.y``."""
    names = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.append(sub.id)
    return names


def _follow(body: list[ast.stmt], avoid: set[str], taint: dict[str, set[str]]) -> None:
    """Walk statements in order, noting for each variable the names in ``avoid`` it came from."""
    for stmt in body:
        if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            value = stmt.value if stmt.value is not None else ast.Constant(None)
            used = _used(value, avoid, taint)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                replaces = isinstance(target, ast.Name | ast.Tuple | ast.List) and not isinstance(
                    stmt, ast.AugAssign)
                for name in _targets(target):
                    _bind(taint, name, set(used) if replaces else taint.get(name, set()) | used)
        elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            _bind(taint, stmt.name, _used(stmt, avoid, taint))
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            for alias in stmt.names:
                if alias.name == "*" or alias.name.rsplit(".", 1)[-1] in avoid:
                    taint[alias.asname or alias.name] = {alias.name}
                    if alias.name == "*":
                        taint.update({name: {name} for name in avoid})
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            func = stmt.value.func  # x.append(...), np.add.at(x, ...): the call changes x
            args = [*stmt.value.args, *(k.value for k in stmt.value.keywords)]
            used = set().union(*(_used(a, avoid, taint) for a in args)) if args else set()
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                _bind(taint, func.value.id, taint.get(func.value.id, set()) | used)
            for arg in stmt.value.args[:1]:
                if isinstance(arg, ast.Name):
                    _bind(taint, arg.id, taint.get(arg.id, set()) | used)
        elif isinstance(stmt, ast.For | ast.AsyncFor | ast.With | ast.AsyncWith):
            source = stmt.iter if isinstance(stmt, ast.For | ast.AsyncFor) else stmt
            if isinstance(stmt, ast.For | ast.AsyncFor):
                for name in _targets(stmt.target):
                    _bind(taint, name, _used(source, avoid, taint))
            else:
                for item in stmt.items:
                    if item.optional_vars is not None:
                        for name in _targets(item.optional_vars):
                            _bind(taint, name, _used(item.context_expr, avoid, taint))
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(stmt, field, None)
            if isinstance(inner, list) and not isinstance(
                    stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                _follow([s for s in inner if isinstance(s, ast.stmt)]
                        + [s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body],
                        avoid, taint)


def copied_from(name: str, avoid: Iterable[str] = (), copies: Iterable[str] = (),
                cells: Sequence[str] | None = None) -> set[str]:
    """The names the notebook's ``name`` was computed from among ``avoid`` (library functions)
    and ``copies`` (notebook variables that hold the answer), reading ``cells`` (default: the
    cells run so far in this kernel)."""
    avoid = set(avoid) | set(copies)
    # a variable in copies carries its own name wherever the notebook binds it
    taint: dict[str, set[str]] = {_COPIES: set(copies)}
    taint.update({copy: {copy} for copy in copies})
    for source in _history_cells() if cells is None else cells:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        _follow(tree.body, avoid, taint)
    return taint.get(name, set())


def check_own_work(name: str, avoid: Iterable[str] = (), copies: Iterable[str] = (),
                   hint: str | None = None, cells: Sequence[str] | None = None,
                   quiet: bool = False) -> None:
    """The notebook's ``name`` (a variable or a function) is the student's own computation: it
    does not come from a library function in ``avoid`` (the one the test compares it with) nor
    from a notebook variable in ``copies`` (one that already holds the answer). Reads the code of
    the cells run so far."""
    used = copied_from(name, avoid, copies, cells)
    if used:
        listed = ", ".join(sorted(used))
        raise _fail(name, _("is computed from {listed}, which this exercise asks you to do "
                            "yourself (the test compares your result with it)").format(
                                listed=listed),
                    hint or _("compute it with your own code, as the exercise describes"))
    _passed(name, _("is your own computation"), quiet)
