#!/usr/bin/env bash
# Set up and start Växla with the demo municipality (extensions 1000-1049,
# password demo<extension>), SIP on 127.0.0.1:5060, web/API on 127.0.0.1:8080.
# Extra arguments go to `vaxla serve` (e.g. --sip-listen 127.0.0.1:5070).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/vaxla serve --demo --log-format text "$@"
