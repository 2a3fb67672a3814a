#!/usr/bin/env bash
# Host packages for image/build and hw-tests/emulated (Debian 12), installed when missing.
set -euo pipefail
pkgs=(mmdebstrap qemu-system-x86 ovmf swtpm swtpm-tools sbsigntool dosfstools mtools fdisk
      e2fsprogs cryptsetup-bin openssl dnsmasq-base tcpdump iproute2 debian-archive-keyring)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "image-deps: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
