"""Run an agent: `python -m shopfloor.sdk.run package.module:callable`.

A spec's `module: pkg.mod:fn` becomes `[sys.executable, "-m", "shopfloor.sdk.run",
"pkg.mod:fn"]`. The callable takes no arguments: a coroutine function runs under
`asyncio.run` and SIGTERM or SIGINT cancel it (it sees `CancelledError` and may clean
up); a plain function is called (the same signals raise `KeyboardInterrupt` in it). The
current directory is on the import path, as for any `python -m`. Logging goes to
stdout, one line per record with its time, secrets redacted.

Exit status: 0 after a clean return or after SIGTERM/SIGINT; 1 when the agent raised
(its traceback, then one line naming the exception, on stderr); 2 when the target
cannot be imported (one line saying why; the traceback too when the module raised).

The contract: what the platform hands every agent
-------------------------------------------------

- env `SHOPFLOOR_AGENT_NAME`, `SHOPFLOOR_AGENT_ORG` (organisation id),
  `SHOPFLOOR_AGENT_VERSION`;
- env `SHOPFLOOR_AGENT_FILES`: a directory holding `config.json` (the spec's `config`
  object), `cert.pem`, `key.pem`, `ca.pem` (the agent's own certificate, mode 0600).
  On SIGHUP the files were replaced (a renewed certificate) and should be re-read; on
  SIGTERM the agent stops gracefully (within the grace period, 10 s by default).
- from the `mqtt` provisioner: `SHOPFLOOR_THING_ID`, `SHOPFLOOR_THING_KEY`,
  `SHOPFLOOR_CHANNELS` (JSON list of `{"id","name"}`), and when configured
  `SHOPFLOOR_HTTP_URL` (base URL of the platform's HTTP adapter) and
  `SHOPFLOOR_MQTT_URL`;
- from the `postgres` provisioner: `SHOPFLOOR_POSTGRES_URL` (postgresql://...) and
  `PG*`;
- health: when the spec has `health.url` (e.g. `http://127.0.0.1:18080/health`), the
  platform GETs it; 2xx is healthy.

`shopfloor.sdk.AgentContext.from_env()` reads the environment and `config.json`;
`shopfloor.sdk.serve_health` answers the health check.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

from ._runner import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    PROGRAM,
    TargetNotFound,
    interrupt_on_stop_signals,
    load_target,
    run_agent,
)

USAGE = f"usage: python -m {PROGRAM} package.module:callable"


def main(argv: Sequence[str] | None = None) -> int:
    """Import the target named in `argv` (the command line by default) and run it; the
    exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["-h"], ["--help"]):
        print(f"{USAGE}\n\n{__doc__}")
        return EXIT_OK
    if len(args) != 1:
        print(USAGE, file=sys.stderr)
        return EXIT_NOT_FOUND
    reference = args[0]
    interrupt_on_stop_signals()
    try:
        target = load_target(reference)
    except KeyboardInterrupt:
        return EXIT_OK  # stopped while it was being imported
    except TargetNotFound as exc:
        if exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__)
        print(f"{PROGRAM}: cannot import {reference}: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    return run_agent(target)


if __name__ == "__main__":
    sys.exit(main())
