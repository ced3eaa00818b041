#!/usr/bin/env bash
# Prepare this checkout to run Växla on Debian: Debian packages that are
# missing, the virtualenv in .venv and the Python packages.
#   scripts/setup.sh          what `vaxla serve` needs
#   scripts/setup.sh --test   plus the real peers and services the tests use
#   scripts/setup.sh --bench  plus the references the benchmarks compare with (rtpengine)
set -euo pipefail
cd "$(dirname "$0")/.."

for_tests=0
for_bench=0
case "${1:-}" in
    --test) for_tests=1 ;;
    --bench) for_tests=1; for_bench=1 ;;
esac

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=0
apt_install() {
    [ $# -eq 0 ] && return 0
    echo "setup: installing Debian packages: $*"
    if [ $apt_updated = 0 ]; then as_root apt-get update -q; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
    echo "setup: Växla needs Python 3.11 or newer as python3" >&2; exit 1; }

missing=()
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v gcc >/dev/null || missing+=(gcc)
# Python headers: the C relay fast path (vaxla.media._fastrelay) is built with them
[ -f "$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] ||
    missing+=(python3-dev)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)  # Swedish prompts
if [ $for_tests = 1 ]; then
    command -v sipp >/dev/null || missing+=(sip-tester)
    command -v baresip >/dev/null || missing+=(baresip)
    command -v sox >/dev/null || missing+=(sox)
    command -v ffmpeg >/dev/null || missing+=(ffmpeg)
    command -v svcrack >/dev/null || missing+=(sipvicious)
    command -v ldapsearch >/dev/null || missing+=(ldap-utils)
    if ! command -v slapd >/dev/null && [ ! -x /usr/sbin/slapd ]; then
        # No system database: tests run private slapd instances.
        echo "slapd slapd/no_configuration boolean true" | as_root debconf-set-selections
        missing+=(slapd)
    fi
    command -v pg_isready >/dev/null || missing+=(postgresql-client)
    # Browser tests: Playwright drives Debian's Chromium (no browser download).
    [ -x /usr/bin/chromium ] || missing+=(chromium)
fi
new_rtpengine=0
if [ $for_bench = 1 ] && ! command -v rtpengine >/dev/null; then
    missing+=(rtpengine-daemon)  # bench_relay.py starts its own, in userspace mode
    new_rtpengine=1
fi
apt_install "${missing[@]}"
if [ $new_rtpengine = 1 ] && command -v systemctl >/dev/null; then
    as_root systemctl disable --now rtpengine-daemon.service 2>/dev/null || true
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=.venv/.vaxla-installed
# What the install builds from: a changed C file is rebuilt (in place, in src/).
want="$(cat pyproject.toml setup.py src/vaxla/media/_fastrelay.c | sha256sum | cut -d' ' -f1)-$for_tests"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] ||
    ! .venv/bin/python -c 'import vaxla.media._fastrelay' 2>/dev/null; then
    .venv/bin/python -m pip install -q --upgrade pip
    if [ $for_tests = 1 ]; then
        .venv/bin/python -m pip install -q -e '.[test]'
    else
        .venv/bin/python -m pip install -q -e .
    fi
    echo "$want" > "$stamp"
fi

if [ $for_tests = 1 ]; then
    # PostgreSQL on 127.0.0.1:5432 for the storage tests: start it, or install it.
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
            apt_install postgresql
        fi
        version=$(ls /etc/postgresql | sort -V | tail -n1)
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
        # The tests connect as postgres/postgres over TCP.
        as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" || true
    fi
fi
