"""Reading credentials out of request headers, the same way for every protocol edge."""

from __future__ import annotations

__all__ = ["thing_key"]


def thing_key(authorization: str) -> str:
    """The key of `Authorization: Thing <key>` (also a bare key, as Mainflux clients send
    it); empty when the header holds another scheme."""
    scheme, _, rest = authorization.strip().partition(" ")
    if rest and scheme.lower() == "thing":
        return rest.strip()
    return authorization.strip() if not rest else ""
