"""The TLS context the platform's own HTTP clients verify servers with.

`httpx.AsyncClient()` builds a new `ssl.create_default_context()` each time, and loading
the CA bundle into it takes about 40 ms; the agents' health checks, the flows' `http`
tasks and the OIDC key fetcher each make a client when their service starts, which was a
quarter of a platform's start. One context, made on first use, serves them all: it is
only read once made (`SSLContext` is safe to share between connections and threads).
"""

from __future__ import annotations

import os
import ssl
from functools import cache

__all__ = ["client_ssl_context"]


@cache
def client_ssl_context() -> ssl.SSLContext:
    """The context httpx makes by default, made once: `SSL_CERT_FILE` or `SSL_CERT_DIR`
    when set (a plant's own CA), else certifi's bundle (httpx's dependency)."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    import certifi

    return ssl.create_default_context(cafile=certifi.where())
