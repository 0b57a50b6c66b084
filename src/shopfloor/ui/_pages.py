"""The console's pages: one registry that the navigation is drawn from.

A capability adds a page in its own folder, in three steps (docs/console.md):

1. its routes render a template that extends `console/layout.html` through
   `shopfloor.ui.render(request, "agents/list.html", {...})` (a template folder of
   its own is added with `add_templates(package)`) and sign the caller in with
   `SignedInDep` (or `signed_in(request)` to redirect instead);
2. its `capability.py` registers the page:
   `pages.add(ConsolePage(capability="agents", path="/console/agents",
   title="nav.agents"))`;
3. it adds the title and its texts to every `locales/<language>.yaml`.

The navigation lists the pages whose capability runs in this process and whose
`action` the signed-in role allows (a page a viewer may not see is absent from their
navigation; its routes refuse them too, they are the authority).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from shopfloor.auth import Action, Principal

__all__ = ["PREFIX", "ConsolePage", "ConsolePages", "pages"]

#: Every console path but `/` is under it: the API and the adapters keep theirs (the
#: configuration server's `/flows`, Mainflux's `/things/bootstrap`) whatever pages come.
PREFIX = "/console"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsolePage:
    #: The service that must run in this process for the page to be listed.
    capability: str
    #: Where it lives, under `/console/` (e.g. `/console/agents`); `/` is the overview.
    path: str
    #: Catalogue key of its title in the navigation, e.g. `nav.agents`.
    title: str
    #: What the caller's role must allow for the page to be listed.
    action: Action = Action.READ
    #: Position in the navigation: lower first, then registration order.
    order: int = 100


class ConsolePages:
    def __init__(self) -> None:
        self._pages: dict[str, ConsolePage] = {}

    def add(self, page: ConsolePage) -> ConsolePage:
        """Register a page; a path taken twice is an error, as a service name is."""
        if page.path != "/" and not page.path.startswith(PREFIX + "/"):
            raise ValueError(f"{page.path!r}: a console page's path starts with {PREFIX}/")
        if page.path in self._pages:
            raise ValueError(f"the console page {page.path} is registered already")
        self._pages[page.path] = page
        return page

    def __iter__(self) -> Iterator[ConsolePage]:
        return iter(sorted(self._pages.values(), key=lambda page: page.order))

    def visible(self, principal: Principal, running: Collection[str]) -> list[ConsolePage]:
        """The pages of running capabilities that `principal` may see, in order."""
        return [
            page
            for page in self
            if page.capability in running
            and principal.org_id is not None
            and principal.can(page.action)
        ]


#: The console's pages; `shopfloor.ui.capability` adds the built-in ones.
pages = ConsolePages()
