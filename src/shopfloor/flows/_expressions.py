"""CEL expressions (conditions, transforms, payloads), compiled once, never `eval`.

`common-expression-language` wraps the Rust `cel` crate: about 11 µs per evaluation
on the development machine against 172 µs for the pure-Python `cel-python`, which is
why it was chosen. A document is refused when one of its expressions does not compile;
what an expression names (`payload`, `variables`, `trigger`) is only known when it runs.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

import cel
from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

__all__ = ["Expression", "compile_expression"]

#: The code a parameter or condition that does not compile is reported with.
INVALID_EXPRESSION = "flow_invalid_expression"
MAX_EXPRESSION_LENGTH = 4096
_WHERE = re.compile(r"<input>:(\d+:\d+): ([^\n]*?)(?: expecting \{|\n|$)")


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> cel.Program:
    """The compiled program of `source`; `ValueError` with the parser's message if none."""
    return cel.compile(source)


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
