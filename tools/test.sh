#!/usr/bin/env bash
# Runs the whole test suite (README's test command): sets up, then runs every layer with pytest.
# Arguments go to pytest, e.g. tools/test.sh tests/api -k token.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh test
export MCLOUD_TEST_DATABASES=${MCLOUD_TEST_DATABASES:-sqlite,postgres}
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
