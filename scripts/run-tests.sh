#!/usr/bin/env bash
# The whole suite: lint, types, pytest (quick mode for slow tests under CI), contract tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export ETH_HASH_BACKEND=pysha3
export PATH="$PWD/node_modules/.bin:$PATH"
BIN=.venv/bin

echo "== ruff"; $BIN/ruff check node tests bench migrations scripts
echo "== mypy"; $BIN/mypy

echo "== pytest"
set +e
$BIN/pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
[ "$rc" -eq 0 ] || exit "$rc"

if [ -d tests/contracts ] && ls tests/contracts/*.js tests/contracts/*.ts >/dev/null 2>&1; then
  echo "== contract tests (hardhat)"; npm run --silent test:contracts
fi
