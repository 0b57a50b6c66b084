#!/usr/bin/env bash
# Install what the benchmarks need when it is missing: wrk (Debian package) for HTTP load,
# and the `bench` extra of pyproject.toml (py-spy, psutil) in the given Python environment.
# Safe to run repeatedly. Usage: PYTHON=.venv/bin/python bash scripts/ensure-bench-tools.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

log() { printf 'bench-tools: %s\n' "$*"; }

if ! command -v wrk >/dev/null; then
  log "installing wrk"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
command -v wrk >/dev/null || { log "wrk is still missing"; exit 1; }

# The requirements are read from pyproject.toml so that their bounds live in one place.
"$PYTHON" - <<'PY'
import importlib.metadata
import subprocess
import sys
import tomllib

with open("pyproject.toml", "rb") as f:
    wanted = tomllib.load(f)["project"]["optional-dependencies"]["bench"]
missing = []
for requirement in wanted:
    name = requirement.split(">")[0].split("<")[0].split("=")[0].strip()
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        missing.append(requirement)
if missing:
    print("bench-tools: installing", " ".join(missing), flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *missing], check=True)
PY
log "ready"
