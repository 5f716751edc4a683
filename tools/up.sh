#!/usr/bin/env bash
# Brings up the all-in-one mCloud on this machine (README's run command). Arguments go to
# `mcloud up`, e.g. tools/up.sh --host 0.0.0.0 --port 8080.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh run
exec .venv/bin/mcloud up "$@"
