"""`shopfloor certs ...` on a data dir, as an operator runs it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from .conftest import openssl_verify


def _certs(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPFLOOR_")}
    env |= {"SHOPFLOOR_DATA_DIR": str(data), "COLUMNS": "300"}
    return subprocess.run(
        [sys.executable, "-m", "shopfloor", "certs", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


def test_issue_list_revoke_and_print_the_ca(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "out"
    issued = _certs(data, "issue", "--entity-type", "thing", "--entity-id", "press-04",
                    "--ttl", "720h", "--out", str(out))  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o600
    openssl_verify((out / "ca.pem").read_text(), (out / "cert.pem").read_text(), tmp_path)
    serial = issued.stdout.split()[1]

    listed = _certs(data, "list")
    assert listed.returncode == 0 and f"{serial}  thing:press-04" in listed.stdout

    revoked = _certs(data, "revoke", serial, "--reason", "key_compromise")
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked key_compromise" in _certs(data, "list").stdout
    twice = _certs(data, "revoke", serial)
    assert twice.returncode == 1 and "certificate_already_revoked" in twice.stderr

    ca = _certs(data, "ca")
    assert ca.returncode == 0 and ca.stdout == (out / "ca.pem").read_text()
    crl = _certs(data, "ca", "--crl")
    assert crl.returncode == 0 and crl.stdout.startswith("-----BEGIN X509 CRL-----")
