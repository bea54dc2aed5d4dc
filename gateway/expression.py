"""Safe arithmetic over tag values, for derived tags such as `voltage * current / 1000`.

An integrator's YAML must never be able to run code on the gateway, so expressions
are parsed with `ast` and only numbers, tag names, `+ - * /`, unary minus and
parentheses are accepted; evaluation walks the tree (never `eval`).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}


class ExpressionError(ValueError):
    """The expression uses something other than numbers, tag names, + - * / and parentheses."""


@dataclass(frozen=True)
class Expression:
    text: str
    tree: ast.expr
    names: frozenset[str]

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The value for these tag values; ZeroDivisionError and KeyError pass through to the caller."""
        return _evaluate(self.tree, values)


def parse_expression(text: str) -> Expression:
    """Parse and check `text`; raises ExpressionError naming what is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise ExpressionError(f"{text!r} is not an arithmetic expression ({e.msg})") from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise ExpressionError(f"{text!r}: only numbers are allowed as constants, not {node.value!r}")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise ExpressionError(f"{text!r}: only + - * / are allowed")
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise ExpressionError(f"{text!r}: only + - * / are allowed")
        elif not isinstance(node, ast.operator | ast.unaryop | ast.expr_context):
            raise ExpressionError(
                f"{text!r}: {type(node).__name__.lower()} is not allowed; use numbers, tag names, + - * / and ()"
            )
    return Expression(text, tree, frozenset(names))


def _evaluate(node: ast.expr, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return node.value  # type: ignore[no-any-return]
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, values))
    raise ExpressionError(f"unexpected {type(node).__name__}")  # parse_expression let nothing else through
