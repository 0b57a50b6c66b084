"""`shopfloor users ...`: account administration from the command line."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from shopfloor._logging import configure_logging
from shopfloor.console import console, load_settings, out
from shopfloor.core import CoreSettings
from shopfloor.core.capability import database_url

from ._passwords import MIN_PASSWORD_LENGTH
from ._secrets import SecretFiles
from ._thing_keys import ThingKeys

__all__ = ["create_admin_account", "users_app"]

users_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)


@users_app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="E-mail of the platform admin.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="SHOPFLOOR_NEW_ADMIN_PASSWORD",
            help="Password, prompted if not given (env SHOPFLOOR_NEW_ADMIN_PASSWORD).",
        ),
    ],
    reset_password: Annotated[
        bool, typer.Option(help="If the account exists, set its password and make it admin.")
    ] = False,
) -> None:
    """Create a platform admin (or reset an existing admin's password)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        console.print(f"[red]The password needs at least {MIN_PASSWORD_LENGTH} characters.[/red]")
        raise typer.Exit(2)
    settings = load_settings()
    configure_logging(fmt="text", level="WARNING")
    try:
        message = asyncio.run(create_admin_account(settings, email, password, reset=reset_password))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    out.print(message)


async def create_admin_account(
    settings: CoreSettings, email: str, password: str, *, reset: bool
) -> str:
    from shopfloor.registry import Registry

    from .capability import IdentitySettings

    registry = await Registry.open(
        database_url(settings), ThingKeys(SecretFiles(settings.data_dir).thing_key_secret())
    )
    try:
        password_hash = await asyncio.to_thread(
            settings.section(IdentitySettings).passwords().hash, password
        )
        existing = await registry.find_user_by_email(email)
        if existing is None:
            user = await registry.create_user(
                email=email,
                password_hash=password_hash,
                org_id=None,
                role=None,
                platform_admin=True,
            )
            return f"created platform admin {user.email} ({user.id})"
        if not reset:
            raise ValueError(f"{email} exists; add --reset-password to set a new password")
        await registry.update_user(existing.id, password_hash=password_hash)
        await registry.set_platform_admin(existing.id, True)
        return f"reset the password of {existing.email}"
    finally:
        await registry.close()
