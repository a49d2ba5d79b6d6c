#!/usr/bin/env bash
# Make sure headless Chromium and its WebDriver are installed (Debian packages `chromium` and
# `chromium-driver`): the group dashboard test drives a real browser through Selenium.
# Quiet when both are already there. As root on Debian/Ubuntu, installs them with apt-get;
# otherwise prints what to install and exits 1. Nothing is downloaded at test time.
set -euo pipefail

have_browser() {
    command -v chromedriver >/dev/null 2>&1 && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
}

if have_browser; then
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "Chromium not found: install the Debian packages 'chromium' and 'chromium-driver' (sudo apt-get install chromium chromium-driver) or re-run this script as root." >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "Chromium not found and apt-get is unavailable: install Chromium and its chromedriver with your package manager." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium chromium-driver >/dev/null

if ! have_browser; then
    echo "installed 'chromium' and 'chromium-driver' but found no chromium/chromedriver on PATH." >&2
    exit 1
fi
echo "Chromium installed: $(command -v chromium) with $(command -v chromedriver)"
