#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, only those missing (idempotent,
# a no-op in well under a second when everything is there). Extra package names given as
# arguments are installed the same way (web-test-deps.sh adds Chromium).
set -euo pipefail
PKGS=(
    # llama.cpp through llama-cpp-sys-2: cmake + bindgen
    cmake clang libclang-dev
    # TPM and volume crates (provisioning/): tss-esapi 7 links tpm2-tss 3.2.1 via pkg-config;
    # the swtpm TCTI for tests, the device TCTI for the box
    pkg-config libtss2-dev libtss2-tcti-swtpm0 libtss2-tcti-device0
    # the software TPM each test starts (swtpm_setup for fresh states); tpm2-tools for manual
    # inspection (tpm2_pcrread, tpm2_getcap)
    swtpm swtpm-tools tpm2-tools
    # French speech for the transcription tests (whisper is fed espeak-ng's voice)
    espeak-ng
    # LUKS2 on files (luksFormat, token, open --test-passphrase); systemd-cryptenroll
    cryptsetup-bin systemd
    # TLS tests: openssl s_server as a permissive control peer
    openssl
    # sfdisk: GPT disk image for the update agent's loop-device test (losetup: util-linux)
    fdisk
    # LAN guard tests: network namespaces and veth pairs (ip netns)
    iproute2
    # OCR of scanned documents (civia-documents' ocr.rs): tesseract with its French data, and
    # pdftoppm (poppler) to render the PDF pages that carry no text
    tesseract-ocr tesseract-ocr-fra poppler-utils
    # exported tables read back the way a commune opens them (LibreOffice Calc, headless)
    libreoffice-calc-nogui
    # backups to the mairie's NAS: Samba's client (what the box runs) and a real Samba server
    # the tests start in a network namespace (smbd; nothing is started by the package here);
    # nft for the firewall test of the NAS's opening
    smbclient samba nftables
)
PKGS+=("$@")
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
