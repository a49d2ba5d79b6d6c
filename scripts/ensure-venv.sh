#!/usr/bin/env bash
# Make sure `python3 -m venv` works: Debian and Ubuntu ship ensurepip separately, in the `python3-venv` package.
# Quiet when it already works. As root with apt-get, installs the package; otherwise prints what to install.
set -euo pipefail
PYTHON="${1:-python3}"

if "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "$PYTHON cannot create virtual environments: install the 'python3-venv' package (sudo apt-get install python3-venv)." >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3-venv >/dev/null
"$PYTHON" -c 'import ensurepip, venv'
