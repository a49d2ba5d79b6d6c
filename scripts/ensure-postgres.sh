#!/usr/bin/env bash
# Make sure PostgreSQL server binaries (initdb, postgres) are installed.
# Tests and benchmarks start their own private server (learnagg.bench.pgserver);
# this script only installs the binaries, it does not start or configure a cluster.
# Quiet when the binaries are already there. As root on Debian/Ubuntu, installs the
# `postgresql` package with apt-get; otherwise prints what to install and exits 1.
set -euo pipefail

has_server_bins() {
    [[ -x "$1/initdb" && -x "$1/postgres" ]]
}

find_pg_bindir() {
    local dir bindir
    # /usr/lib/postgresql/<N>/bin, highest major version first.
    while IFS= read -r dir; do
        if has_server_bins "$dir"; then
            printf '%s\n' "$dir"
            return 0
        fi
    done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V -r)
    if command -v pg_config >/dev/null 2>&1; then
        bindir="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -n "$bindir" ]] && has_server_bins "$bindir"; then
            printf '%s\n' "$bindir"
            return 0
        fi
    fi
    if command -v postgres >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v postgres)"
        return 0
    fi
    return 1
}

if find_pg_bindir >/dev/null; then
    exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
    echo "PostgreSQL server binaries not found: install the Debian package 'postgresql' (sudo apt-get install postgresql) or re-run this script as root." >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL server binaries not found and apt-get is unavailable: install PostgreSQL server (initdb, postgres) with your package manager." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null

if ! bindir="$(find_pg_bindir)"; then
    echo "installed the 'postgresql' package but still found no initdb/postgres binaries." >&2
    exit 1
fi
if ! id -u postgres >/dev/null 2>&1; then
    echo "installed the 'postgresql' package but there is no 'postgres' OS user." >&2
    exit 1
fi
echo "PostgreSQL server binaries installed in $bindir"
