#!/usr/bin/env bash
# The browser tests of the web application: installs what they need (Chromium, the pinned
# playwright-core and axe-core), then runs every hw-tests/web/*.test.mjs one file at a time.
# Needs target/release/civiad (or CIVIAD_BIN) and the SmolLM2 model under .cache/models/.
# CIVIA_README_SCREENSHOTS=1 also refreshes the README's screenshots in docs/screenshots/.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
"$REPO/appliance/scripts/web-test-deps.sh"
cd "$REPO"
exec node --test --test-concurrency=1 --test-reporter=spec "$@" hw-tests/web/*.test.mjs
