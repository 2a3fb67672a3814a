#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only those missing (idempotent,
# a no-op in well under a second when everything is there).
#   cmake, clang, libclang-dev: llama.cpp through llama-cpp-sys-2 (cmake + bindgen)
set -euo pipefail
PKGS=(cmake clang libclang-dev)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "deps: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
