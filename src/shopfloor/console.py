"""What every `shopfloor` command shares: the consoles and reading the settings."""

from __future__ import annotations

import os
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console

from shopfloor.core import CoreSettings, ServiceError
from shopfloor.settings import settings_class

__all__ = ["capability_modules", "console", "load_settings", "out"]

console = Console(stderr=True, soft_wrap=True)
# soft_wrap: ids, keys and URLs must print whole, whatever the terminal width.
out = Console(soft_wrap=True, highlight=False)


def capability_modules() -> list[str]:
    """The plug-in modules named in `SHOPFLOOR_CAPABILITIES` (read here, at the edge)."""
    named = os.environ.get("SHOPFLOOR_CAPABILITIES", "").split(",")
    return [module.strip() for module in named if module.strip()]


def load_settings(**overrides: Any) -> CoreSettings:
    """Settings from the environment, with command-line options taking precedence.

    Plug-in capabilities named in `SHOPFLOOR_CAPABILITIES` are imported first, so their
    settings and services are known.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        model = settings_class(capability_modules())
        return model(**given)
    except ValidationError as exc:
        console.print("[red]Invalid settings:[/red]")
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"] if not str(p).isdigit()) or "settings"
            console.print(f"  SHOPFLOOR_{field.upper()}: {error['msg']}")
        raise typer.Exit(2) from exc
    except (ImportError, ServiceError, TypeError) as exc:
        console.print(f"[red]Cannot load the capabilities:[/red] {exc}")
        raise typer.Exit(2) from exc
