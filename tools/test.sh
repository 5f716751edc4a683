#!/usr/bin/env bash
# Runs the whole test suite (README's test command): sets up, then runs every layer with pytest,
# in two pytest-xdist workers (MCLOUD_TEST_WORKERS; 0: in this process), each test module (or class)
# a unit of work, handed out longest first (tests/conftest.py).
# Arguments go to pytest, e.g. tools/test.sh tests/api -k token.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh test
export MCLOUD_TEST_DATABASES=${MCLOUD_TEST_DATABASES:-sqlite,postgres}
workers=${MCLOUD_TEST_WORKERS:-2}
parallel=()
if [ "$workers" != 0 ]; then
    parallel=(-n "$workers" --dist loadscope --no-loadscope-reorder)
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider "${parallel[@]}" "$@"
