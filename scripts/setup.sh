#!/usr/bin/env bash
# Prepare a fresh Debian machine (or an existing checkout) to develop and test schemaless:
# the system packages, then .venv with the package installed in editable mode. Idempotent:
# a second run installs nothing unless pyproject.toml changed. It starts no MariaDB service;
# the tests start a private server of their own (schemaless/testing.py).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*"; }

# (a) a Python of at least 3.10
PY=""
for candidate in ${PYTHON:-} python3 python3.13 python3.12 python3.11 python3.10; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        PY="$(command -v "$candidate")"
        break
    fi
done
if [ -z "$PY" ]; then
    echo "setup: python3 >= 3.10 is required (Debian: apt-get install python3)" >&2
    exit 1
fi
say "using $PY ($("$PY" -c 'import platform; print(platform.python_version())'))"

# (b) system packages
has() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/local/sbin/$1" ]; }
missing=()
has mariadbd || has mysqld || missing+=(mariadb-server)
has pkg-config || missing+=(pkg-config)
has memcached || missing+=(memcached)  # the cache tests start a private one
# tests/cluster/test_galera.py starts a 3-node Galera cluster (joiners get their state by
# rsync) behind an HAProxy.
[ -e /usr/lib/galera/libgalera_smm.so ] || missing+=(galera-4)
has haproxy || missing+=(haproxy)
has rsync || missing+=(rsync)
has mysql_config || has mariadb_config ||
    { has pkg-config && { pkg-config --exists mariadb || pkg-config --exists libmariadb; }; } ||
    missing+=(libmariadb-dev)
# mysqlclient has no Linux wheels: pip compiles it, which needs a C compiler and Python.h.
has cc || has gcc || missing+=(gcc)
"$PY" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' ||
    missing+=(python3-dev)
# Debian's python3 has the venv module but not ensurepip without python3-venv.
"$PY" -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)

if [ ${#missing[@]} -gt 0 ]; then
    install=(apt-get install -y --no-install-recommends "${missing[@]}")
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing ${missing[*]}"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive "${install[@]}"
    else
        echo "setup: missing system packages: ${missing[*]}" >&2
        echo "setup: install them as root, then run this again:" >&2
        echo "    apt-get update && DEBIAN_FRONTEND=noninteractive ${install[*]}" >&2
        exit 1
    fi
else
    say "system packages present"
fi

# (c) the virtualenv, reinstalled only when pyproject.toml changes
if ! .venv/bin/python -c '' 2>/dev/null; then
    say "creating .venv"
    rm -rf .venv
    "$PY" -m venv .venv
fi
stamp=.venv/.schemaless-stamp
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
    say "installing schemaless[dev,django] into .venv"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev,django]'
    echo "$wanted" >"$stamp"
else
    say ".venv is up to date"
fi
