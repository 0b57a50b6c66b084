"""The web console: server-rendered pages (Jinja2 + htmx) served at `/` by the
`console` service, with its own sign-in sessions, one layout and navigation, and a
page registry for the pages of other capabilities (docs/console.md)."""

from ._errors import ConsoleError, CsrfRefused, InvalidForm, SignInRequired
from ._forms import PAGE_SIZES, checked, paging, sort_of
from ._i18n import Catalogue
from ._pages import PREFIX, ConsolePage, ConsolePages, pages
from ._sessions import ConsoleSession, SessionStore
from ._web import (
    Console,
    SignedForm,
    SignedFormDep,
    SignedIn,
    SignedInDep,
    asset_response,
    console_page,
    platform_of,
    render,
    signed_in,
)

__all__ = [
    "PAGE_SIZES",
    "PREFIX",
    "Catalogue",
    "Console",
    "ConsoleError",
    "ConsolePage",
    "ConsolePages",
    "ConsoleSession",
    "CsrfRefused",
    "InvalidForm",
    "SessionStore",
    "SignInRequired",
    "SignedForm",
    "SignedFormDep",
    "SignedIn",
    "SignedInDep",
    "asset_response",
    "checked",
    "console_page",
    "pages",
    "paging",
    "platform_of",
    "render",
    "signed_in",
    "sort_of",
]
