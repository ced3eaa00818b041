#!/usr/bin/env bash
# Set up everything the tests need (Debian peers, PostgreSQL, virtualenv) and
# run the whole suite, real-peer tests included. Extra arguments go to pytest
# (e.g. -m "not slow" for the quick part only).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
.venv/bin/ruff check src tests bench
.venv/bin/mypy
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
