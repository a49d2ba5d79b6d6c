#!/usr/bin/env bash
# Make sure the redis-server binary is installed (the group-cache tests start their own private server).
# Quiet when it is there. As root on Debian/Ubuntu, installs the `redis-server` package with apt-get;
# otherwise prints what to install and exits 1. It does not start or configure a system service.
set -euo pipefail

# redis-cli (package redis-tools, a dependency of redis-server) joins the test Redis Cluster.
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    exit 0
fi
if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "redis-server not found: install the Debian package 'redis-server' (sudo apt-get install redis-server)." >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
# The package may start a system-wide instance on 6379; the tests never use it.
command -v redis-server >/dev/null && command -v redis-cli >/dev/null
echo "redis-server installed: $(command -v redis-server)"
