"""CEL expressions (conditions, transforms, payloads), compiled once, never `eval`.

`common-expression-language` wraps the Rust `cel` crate: about 11 µs per evaluation
on the development machine against 172 µs for the pure-Python `cel-python`, which is
why it was chosen. A document is refused when one of its expressions does not compile;
what an expression names (`payload`, `variables`, `trigger`) is only known when it runs.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from shopfloor.core import lazy_import

if TYPE_CHECKING:
    import cel
else:
    cel = lazy_import("cel")  # its package imports its own command line: when first used

__all__ = ["Expression", "compile_expression"]

#: The code a parameter or condition that does not compile is reported with.
INVALID_EXPRESSION = "flow_invalid_expression"
MAX_EXPRESSION_LENGTH = 4096
_WHERE = re.compile(r"<input>:(\d+:\d+): ([^\n]*?)(?: expecting \{|\n|$)")


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> cel.Program:
    """The compiled program of `source`; `ValueError` with the parser's message if none."""
    return cel.compile(source)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@lru_cache(maxsize=4096)
def names_in(source: str) -> frozenset[str]:
    """Every identifier-like word of `source` (a superset of the variables it reads).

    The library converts every binding it is handed to CEL values on each evaluation,
    about 3 µs a dict and more for each entry, whether the expression reads it or not;
    handing it only the bindings whose names occur in the source saves that (a name in a
    string literal only hands one binding too many)."""
    return frozenset(_NAME.findall(source))


def _compiles(source: str) -> str:
    try:
        compile_expression(source)
    except ValueError as exc:
        # "Failed to parse expression '…': ERROR: <input>:1:4: Syntax error: …" and then
        # the source again with a caret: the line, column and reason are what helps.
        found = _WHERE.search(str(exc))
        reason = f"{found[1]}: {found[2]}" if found else "it does not parse"
        raise PydanticCustomError(
            INVALID_EXPRESSION, "the CEL expression does not compile: {reason}",
            {"reason": reason},
        ) from None  # fmt: skip
    return source


#: A CEL expression, checked to compile when a document is read.
Expression = Annotated[
    str,
    Field(min_length=1, max_length=MAX_EXPRESSION_LENGTH, json_schema_extra={"format": "cel"}),
    AfterValidator(_compiles),
]
