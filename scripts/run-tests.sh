#!/usr/bin/env bash
# The whole suite: lint, types, pytest (quick mode for slow tests under CI), contract tests.
# Ends with one plain "N passed, N failed" line over pytest and the Hardhat tests together.
set -euo pipefail
cd "$(dirname "$0")/.."
export ETH_HASH_BACKEND=pysha3
export PATH="$PWD/node_modules/.bin:$PATH"
BIN=.venv/bin
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

echo "== ruff"; $BIN/ruff check node tests bench migrations scripts
echo "== mypy"; $BIN/mypy
echo "== import layers"; $BIN/python scripts/check_imports.py

echo "== pytest"
set +e
$BIN/pytest -q -p no:cacheprovider --durations=25 "$@" 2>&1 | tee "$logs/pytest.log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
[ "$rc" -eq 0 ] || exit "$rc"

echo "== contract tests (hardhat)"
npm run --silent test:contracts 2>&1 | tee "$logs/hardhat.log"

count() {  # count WORD FILE: the number before WORD on the file's last summary line
  grep -oE "[0-9]+ $1" "$2" | tail -n 1 | grep -oE "^[0-9]+" || echo 0
}
passed=$(( $(count passed "$logs/pytest.log") + $(count passing "$logs/hardhat.log") ))
failed=$(( $(count failed "$logs/pytest.log") + $(count failing "$logs/hardhat.log") ))
if [ "$passed" -eq 0 ]; then echo "no tests ran: failing" >&2; exit 1; fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
