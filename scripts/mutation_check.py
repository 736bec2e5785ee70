"""Plant faults in PoAI's replacements of py-evm parts and show which test catches each.

    .venv/bin/python scripts/mutation_check.py [--only NAME ...] [--list]

Each fault is one textual change to a copy of `node/` in a temporary directory (the working
tree is never touched); the test suite then runs in a subprocess with that copy first on
PYTHONPATH, stopping at the first failure.  A fault no test catches fails this script.  Prints
one line per fault and, at the end, one JSON object with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The tests that guard these components, all part of `make test`: the official fixtures first.
TEST_ORDER = ["tests/conformance", "tests/chain", "tests/txpool"]


@dataclass(frozen=True)
class Fault:
    name: str
    file: str  # under node/
    old: str  # must occur exactly once
    new: str
    why: str
    # Tests to try before TEST_ORDER: the component's own test (for a fault no state or block
    # shows, as py-evm's call order hides it, the only one), so a run on this shared 2-core
    # machine does not first sit through the whole conformance selection.
    first: tuple[str, ...] = ()


FAULTS = [
    Fault("storage-deletion-dropped", "poai/compat/pyevm_state.py",
          'self._get_write_trie()\n            self._pending[self._decode_key(key)] = b""',
          "self._get_write_trie()",
          "SSTORE of zero leaves the slot in the storage trie"),
    Fault("account-encoding-changed", "poai/chain/accounts.py",
          "payload = (encode_uint(account.nonce) + encode_uint(account.balance)",
          "payload = (encode_uint(account.balance) + encode_uint(account.nonce)",
          "nonce and balance swapped in the account RLP"),
    Fault("pending-writes-kept-across-wipe-rollback", "poai/compat/pyevm_state.py",
          "self._pending = {}  # writes since the wipe belonged to the trie being dropped",
          "pass",
          "slot writes made after a storage wipe survive the wipe's rollback",
          ("tests/chain/test_storage_lookup.py",)),
    Fault("jumpdest-cache-keyed-by-length", "poai/chain/computation.py",
          "shared = _analysis.get(code)\n            if shared is None:\n"
          "                shared = _analysis[code] = (set(), set())",
          "shared = _analysis.get(len(code))\n            if shared is None:\n"
          "                shared = _analysis[len(code)] = (set(), set())",
          "two contracts of the same length share their jump-destination analysis",
          ("tests/chain/test_jump_analysis_keys.py",)),
    Fault("receipt-logs-dropped", "poai/chain/receipts.py",
          "+ (encode_item(_LOGS.serialize(logs)) if logs else b\"\\xc0\"))",
          "+ b\"\\xc0\")",
          "a receipt's encoding (receipt trie) leaves its logs out",
          ("tests/chain/test_receipts.py",)),
    Fault("signing-message-without-type", "poai/chain/signing.py",
          "return tx._type_byte + encode_list_payload(payload)",
          "return encode_list_payload(payload)",
          "typed transactions' senders recovered from the untyped message",
          ("tests/chain/test_signing.py",)),
    Fault("trie-embeds-only-short-nodes", "poai/chain/state_trie.py",
          "if len(encoded) < 32:\n            return node  # embedded",
          "if len(encoded) < 16:\n            return node  # embedded",
          "trie nodes of 16-31 bytes hashed instead of embedded in their parent",
          ("tests/chain/test_state_trie.py",)),
    Fault("eip7610-collision-ignores-storage", "poai/chain/corrections.py",
          "or storage_root(self, address) != BLANK_ROOT_HASH)",
          "or False)",
          "creation over an account with storage is not a collision (py-evm's behaviour)",
          ("tests/conformance/test_corrections.py",)),
]


def plant(fault: Fault, dest: Path) -> None:
    shutil.copytree(ROOT / "node", dest / "node",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    target = dest / "node" / fault.file
    text = target.read_text()
    count = text.count(fault.old)
    if count != 1:
        raise SystemExit(f"fault {fault.name}: expected the original text once in {fault.file}, "
                         f"found it {count} times (the code changed: update this script)")
    target.write_text(text.replace(fault.old, fault.new))


def first_failure(output: str) -> str | None:
    match = re.search(r"^FAILED (\S+)", output, re.MULTILINE)
    if match:
        return match.group(1)
    match = re.search(r"^ERROR (\S+)", output, re.MULTILINE)
    return match.group(1) if match else None


def run(fault: Fault, timeout: float) -> dict[str, object]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"poai-mutant-{fault.name}-") as tmp:
        plant(fault, Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(Path(tmp) / "node"),
               "ETH_HASH_BACKEND": "pysha3", "POAI_CONFORMANCE": ""}
        for tests in (*fault.first, *TEST_ORDER):
            cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                   "-p", "no:randomly", "-rf", tests]
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=timeout)
            if proc.returncode not in (0, 5):
                caught = first_failure(proc.stdout) or f"{tests} (exit {proc.returncode})"
                return {"fault": fault.name, "caught": True, "by": caught,
                        "seconds": round(time.monotonic() - started, 1)}
    return {"fault": fault.name, "caught": False, "by": None,
            "seconds": round(time.monotonic() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", metavar="NAME", help="run these faults only")
    ap.add_argument("--list", action="store_true", help="list the faults and exit")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per test run")
    args = ap.parse_args(argv)
    if args.list:
        for f in FAULTS:
            print(f"{f.name}: {f.why} ({f.file})")
        return 0
    faults = [f for f in FAULTS if not args.only or f.name in args.only]
    unknown = set(args.only or []) - {f.name for f in FAULTS}
    if unknown:
        print(f"unknown fault(s): {', '.join(sorted(unknown))} (see --list)", file=sys.stderr)
        return 2
    results = []
    for fault in faults:
        result = run(fault, args.timeout)
        results.append(result)
        verdict = f"caught by {result['by']}" if result["caught"] else "NOT CAUGHT"
        print(f"{fault.name}: {verdict} ({result['seconds']} s)", flush=True)
    missed = [r["fault"] for r in results if not r["caught"]]
    print(json.dumps({"faults": len(results), "caught": len(results) - len(missed),
                      "missed": missed, "results": results}))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
