"""Refusals of a thing's message (a subtree of `shopfloor.core`'s error tree).

IngressError        the message was not taken; `code` says why (stable, documented in
                    docs/api.md), `kind` what the publisher can do: fix the message
                    (invalid, too_large, unsupported), its credentials
                    (unauthenticated, forbidden) or retry after `retry_after`
                    (unavailable, busy: nothing was taken, retrying is safe)
"""

from __future__ import annotations

from shopfloor.core import ErrorKind, ShopfloorError

__all__ = ["IngressError"]


class IngressError(ShopfloorError):
    code = "message_refused"
    kind = ErrorKind.INVALID
