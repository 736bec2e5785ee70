#!/usr/bin/env bash
# The whole suite: lint, types, pytest (quick mode for slow tests under CI), contract tests.
# Ends with one plain "N passed, N failed" line over pytest and the Hardhat tests together.
#
# Much of the suite waits on real nodes (blocks, timelocks, a fixed-length soak) rather than
# computing, so pytest runs on POAI_TEST_WORKERS processes (default: the machine's cores, at
# least 2; a test file stays on one worker), and mypy and the Hardhat tests run beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
export ETH_HASH_BACKEND=pysha3
export PATH="$PWD/node_modules/.bin:$PATH"
BIN=.venv/bin
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
workers=${POAI_TEST_WORKERS:-$(nproc)}
[ "$workers" -ge 2 ] || workers=2

echo "== ruff"; $BIN/ruff check node tests bench migrations scripts
echo "== import layers"; $BIN/python scripts/check_imports.py

# Compiled once, up front: the Hardhat tests and pytest's Hardhat clients then only read the
# artifacts (two compilers writing them at once could race).
echo "== compile contracts (hardhat)"; npm run --silent compile

# Beside pytest: their output is shown once pytest ends.
( $BIN/mypy >"$logs/mypy.log" 2>&1; echo $? >"$logs/mypy.rc" ) &
( npm run --silent test:contracts >"$logs/hardhat.log" 2>&1; echo $? >"$logs/hardhat.rc" ) &

echo "== pytest ($workers workers)"
set +e
$BIN/pytest -q -p no:cacheprovider -n "$workers" --dist loadfile --durations=25 "$@" 2>&1 \
  | tee "$logs/pytest.log"
rc=${PIPESTATUS[0]}
set -e
wait
echo "== mypy"; cat "$logs/mypy.log"
echo "== contract tests (hardhat)"; cat "$logs/hardhat.log"
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
[ "$(cat "$logs/mypy.rc")" -eq 0 ] || { echo "mypy failed" >&2; exit 1; }
[ "$rc" -eq 0 ] || exit "$rc"
[ "$(cat "$logs/hardhat.rc")" -eq 0 ] || { echo "contract tests failed" >&2; exit 1; }

count() {  # count WORD FILE: the number before WORD on the file's last summary line
  grep -oE "[0-9]+ $1" "$2" | tail -n 1 | grep -oE "^[0-9]+" || echo 0
}
passed=$(( $(count passed "$logs/pytest.log") + $(count passing "$logs/hardhat.log") ))
failed=$(( $(count failed "$logs/pytest.log") + $(count failing "$logs/hardhat.log") ))
if [ "$passed" -eq 0 ]; then echo "no tests ran: failing" >&2; exit 1; fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
