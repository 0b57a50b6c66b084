#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the console's browser tests (tests/ui).
# Playwright drives it through `executable_path`; its own browser download is never used.
# Safe to run repeatedly: it installs only when /usr/bin/chromium is missing.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
printf 'chromium: installing Debian'"'"'s chromium for the browser tests\n'
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
