"""A small PromQL evaluator for the alert rules' tests (promtool is not on every machine).

It evaluates, at one instant, the subset of PromQL that deploy/prometheus/alerts.yml
uses, and raises on anything else (so a rule outside the subset fails its test
rather than passing untested): numbers, ``time()``, selectors with ``=``/``=~``
matchers and an optional range ``[5m]``, ``sum``/``max``/``min`` with an
optional ``by (...)``, ``increase``, ``delta``, ``rate``, ``min_over_time``,
``clamp_min``, the arithmetic operators, comparisons (filtering, as
PromQL's), ``and`` and ``or``. Counter resets and extrapolation are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Labels = frozenset[tuple[str, str]]
Series = dict[tuple[str, Labels], list[tuple[float, float]]]
Vector = dict[Labels, float]

LOOKBACK = 300.0
_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?(?:e-?\d+)?)|(?P<dur>\[\d+[smhd]\])|(?P<str>\"[^\"]*\")"
    r"|(?P<op>==|!=|>=|<=|=~|[-+*/(){},=<>])|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*))"
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PRECEDENCE = [("or",), ("and",), ("==", "!=", ">", "<", ">=", "<="), ("+", "-"), ("*", "/")]
AGGREGATIONS = frozenset({"sum", "max", "min"})
FUNCTIONS = frozenset({"time", "increase", "delta", "rate", "min_over_time", "clamp_min"})
#: Words of PromQL that are not metric names (dashboards also use histogram_quantile).
KEYWORDS = AGGREGATIONS | FUNCTIONS | {"by", "and", "or", "histogram_quantile"}


def series(name: str, samples: list[tuple[float, float]], **labels: str) -> Series:
    """One series of ``name`` with ``labels`` and its (time, value) samples."""
    return {(name, frozenset(labels.items())): samples}


@dataclass
class _Tokens:
    items: list[str]
    pos: int = 0

    def peek(self) -> str | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise ValueError(f"expected {expected!r}, found {token!r}")
        self.pos += 1
        return token


def tokenize(expr: str) -> list[str]:
    out, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"cannot read {expr[pos:]!r}")
        out.append(m.group(m.lastgroup or "op"))
        pos = m.end()
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (every name not a keyword or function)."""
    names = set()
    tokens = tokenize(expr)
    for i, token in enumerate(tokens):
        if not re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", token):
            continue
        if token in KEYWORDS:
            continue
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        if (i > 0 and tokens[i - 1] in ("{", ",")) or after in ("=", "=~", "!="):
            continue  # a label name
        if i > 1 and tokens[i - 1] == "(" and tokens[i - 2] == "by":
            continue
        names.add(token)
    return names


class Evaluator:
    """Evaluates an expression over ``data`` at instant ``at`` (seconds)."""

    def __init__(self, data: Mapping[tuple[str, Labels], list[tuple[float, float]]], at: float):
        self.data = data
        self.at = at

    def eval(self, expr: str) -> Vector | float:
        tokens = _Tokens(tokenize(expr))
        value = self._binary(tokens, 0)
        if tokens.peek() is not None:
            raise ValueError(f"unexpected {tokens.peek()!r}")
        return value

    def _binary(self, t: _Tokens, level: int) -> Any:
        if level == len(_PRECEDENCE):
            return self._unary(t)
        left = self._binary(t, level + 1)
        while t.peek() in _PRECEDENCE[level]:
            op = t.take()
            right = self._binary(t, level + 1)
            left = _apply(op, left, right)
        return left

    def _unary(self, t: _Tokens) -> Any:
        token = t.take()
        if token == "(":
            value = self._binary(t, 0)
            t.take(")")
            return value
        if re.fullmatch(r"\d.*", token):
            return float(token)
        if token in AGGREGATIONS:
            by: list[str] | None = None
            if t.peek() == "by":
                t.take()
                t.take("(")
                by = []
                while t.peek() != ")":
                    by.append(t.take())
                    if t.peek() == ",":
                        t.take()
                t.take(")")
            t.take("(")
            inner = self._binary(t, 0)
            t.take(")")
            return _aggregate(token, inner, by)
        if token in FUNCTIONS:
            return self._function(token, t)
        return self._selector(token, t)

    def _function(self, name: str, t: _Tokens) -> Any:
        t.take("(")
        if name == "time":
            t.take(")")
            return self.at
        if name == "clamp_min":
            inner = self._binary(t, 0)
            t.take(",")
            low = self._binary(t, 0)
            t.take(")")
            if isinstance(inner, float):
                return max(inner, low)
            return {k: max(v, low) for k, v in inner.items()}
        metric = t.take()
        ranged = self._selector(metric, t, ranged=True)
        t.take(")")
        out: Vector = {}
        for labels, (window, samples) in ranged.items():
            values = [v for _, v in samples]
            if name == "min_over_time":
                out[labels] = min(values)
            elif len(values) >= 2:
                change = values[-1] - values[0]
                out[labels] = change / window if name == "rate" else change
        return out

    def _selector(self, name: str, t: _Tokens, *, ranged: bool = False) -> Any:
        matchers: list[tuple[str, str, str]] = []
        if t.peek() == "{":
            t.take()
            while t.peek() != "}":
                label, op, value = t.take(), t.take(), t.take().strip('"')
                matchers.append((label, op, value))
                if t.peek() == ",":
                    t.take()
            t.take("}")
        window = None
        if t.peek() is not None and t.peek().startswith("["):  # type: ignore[union-attr]
            raw = t.take()[1:-1]
            window = float(raw[:-1]) * _UNITS[raw[-1]]
        if ranged != (window is not None):
            raise ValueError(f"{name}: a range is {'needed' if ranged else 'not allowed'} here")
        out: dict[Labels, Any] = {}
        for (metric, labels), samples in self.data.items():
            if metric != name or not all(_matches(dict(labels), m) for m in matchers):
                continue
            if window is not None:
                inside = [(ts, v) for ts, v in samples if self.at - window < ts <= self.at]
                if inside:
                    out[labels] = (window, inside)
            else:
                recent = [(ts, v) for ts, v in samples if self.at - LOOKBACK < ts <= self.at]
                if recent:
                    out[labels] = recent[-1][1]
        return out


def _matches(labels: dict[str, str], matcher: tuple[str, str, str]) -> bool:
    label, op, value = matcher
    if op == "=":
        return labels.get(label, "") == value
    if op == "=~":
        return re.fullmatch(value, labels.get(label, "")) is not None
    raise ValueError(f"matcher {op!r} is not supported")


def _aggregate(op: str, inner: Any, by: list[str] | None) -> Vector:
    if isinstance(inner, float):
        raise ValueError(f"{op} of a scalar")
    groups: dict[Labels, list[float]] = {}
    for labels, value in inner.items():
        key = frozenset((k, v) for k, v in labels if by is not None and k in by)
        groups.setdefault(key, []).append(value)
    fold = {"sum": sum, "max": max, "min": min}[op]
    return {k: float(fold(v)) for k, v in groups.items()}


_COMPARE = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}
_ARITH = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b else float("inf"),
}


def _apply(op: str, left: Any, right: Any) -> Any:
    if op in ("and", "or"):
        if isinstance(left, float) or isinstance(right, float):
            raise ValueError(f"{op} needs two vectors")
        if op == "and":
            return {k: v for k, v in left.items() if k in right}
        return {**{k: v for k, v in right.items() if k not in left}, **left}
    fn = _COMPARE.get(op) or _ARITH[op]
    if isinstance(left, float) and isinstance(right, float):
        return float(fn(left, right))
    if isinstance(left, float) or isinstance(right, float):
        vector, scalar, flip = (
            (right, left, True) if isinstance(left, float) else (left, right, False)
        )
        out: Vector = {}
        for k, v in vector.items():
            a, b = (scalar, v) if flip else (v, scalar)
            result = fn(a, b)
            if op in _COMPARE:
                if result:
                    out[k] = v
            else:
                out[k] = result
        return out
    out = {}
    for k, v in left.items():
        if k in right:
            result = fn(v, right[k])
            if op in _COMPARE:
                if result:
                    out[k] = v
            else:
                out[k] = result
    return out


def fires(expr: str, data: Series, at: float) -> bool:
    """Whether ``expr`` gives a non-empty result at ``at`` (the alert would be pending/firing)."""
    value = Evaluator(data, at).eval(expr)
    return bool(value)
