"""`AgentSettings`: the keys of an agent's `config.json` that the `Agent` base class reads,
with their defaults (docs/sdk.md, "Config keys")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._context import config_port, config_seconds

__all__ = ["ACCESS", "AgentSettings"]

ACCESS = ("checker", "organisation", "relations")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSettings:
    """The keys of `config.json` the base class reads (docs/sdk.md)."""

    grpc_host: str = "0.0.0.0"  # noqa: S104 - mTLS with a client certificate required
    grpc_port: int = 0  # 0: a free port (logged, in the health answer)
    health_host: str = "127.0.0.1"
    health_port: int | None = None
    grace_seconds: float = 5.0
    call_timeout: float = 10.0
    #: The platform's API (CRL, relations, states); else SHOPFLOOR_PLATFORM_URL, then
    #: SHOPFLOOR_HTTP_URL.
    platform_url: str | None = None
    revocation_check: bool = True
    crl_refresh_seconds: float = 60.0
    #: "checker" (the one passed), "organisation" (every agent of the organisation may),
    #: "relations" (the platform's relation graph, followed with the agent's certificate).
    access: str = "checker"
    report_state: bool = True  # each state published is also kept by the platform
    follow_via_platform: bool = True  # a target not reachable is followed through it
    direct_retry_seconds: float = 30.0  # then the direct path is tried again

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AgentSettings:
        """The settings in `config`, defaults where absent; ValueError for a wrong one."""

        def text(key: str, default: str | None) -> Any:
            value = config.get(key, default)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"config.{key} is a non-empty string, not {value!r}")
            return value

        defaults = cls()
        access = text("access", defaults.access)
        if access not in ACCESS:
            raise ValueError(f"config.access is one of {', '.join(ACCESS)}, not {access!r}")

        def flag(key: str) -> bool:
            value = config.get(key, True)
            if not isinstance(value, bool):
                raise ValueError(f"config.{key} is true or false, not {value!r}")
            return value

        return cls(
            grpc_host=text("grpc_host", defaults.grpc_host),
            grpc_port=config_port(config, "grpc_port") or 0,
            health_host=text("health_host", defaults.health_host),
            health_port=config_port(config, "health_port"),
            grace_seconds=config_seconds(config, "grace_seconds", defaults.grace_seconds),
            call_timeout=config_seconds(config, "call_timeout", defaults.call_timeout),
            platform_url=text("platform_url", None),
            revocation_check=flag("revocation_check"),
            crl_refresh_seconds=config_seconds(
                config, "crl_refresh_seconds", defaults.crl_refresh_seconds
            ),
            access=access,
            report_state=flag("report_state"),
            follow_via_platform=flag("follow_via_platform"),
            direct_retry_seconds=config_seconds(
                config, "direct_retry_seconds", defaults.direct_retry_seconds
            ),
        )
