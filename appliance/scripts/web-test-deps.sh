#!/usr/bin/env bash
# Installs what the browser tests (hw-tests/web/) need, only what is missing (idempotent, well
# under a second when everything is there): Debian's Chromium, espeak-ng (the French speech
# of the meeting-minutes test, meeting.test.mjs), and the pinned npm packages
# (playwright-core, axe-core, jsqr) from hw-tests/web/package-lock.json into hw-tests/web/node_modules.
# node and npm come from Debian when missing.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WEB="$REPO/hw-tests/web"

PKGS=(chromium fonts-dejavu-core espeak-ng)
# node and npm: Debian's when the machine has none (node:test needs node >= 18).
command -v node >/dev/null && command -v npm >/dev/null || PKGS+=(nodejs npm)
bash "$REPO/appliance/scripts/deps.sh" "${PKGS[@]}"

command -v node >/dev/null || { echo "web-test-deps: node (>= 18) is required" >&2; exit 1; }
# npm ci only when node_modules does not match the lock file (stamp = the lock's hash).
stamp="$WEB/node_modules/.civia-lock.sha256"
want="$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] \
    || [ ! -f "$WEB/node_modules/playwright-core/package.json" ] \
    || [ ! -f "$WEB/node_modules/axe-core/axe.min.js" ] \
    || [ ! -f "$WEB/node_modules/jsqr/dist/jsQR.js" ]; then
    echo "web-test-deps: npm ci in hw-tests/web" >&2
    (cd "$WEB" && npm ci --no-audit --no-fund --ignore-scripts >&2)
    echo "$want" >"$stamp"
fi
