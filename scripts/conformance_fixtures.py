"""Select the ethereum/tests fixtures PoAI runs as project tests, from a git copy of the repo.

    python scripts/conformance_fixtures.py --git-dir /path/to/ethereum/tests/.git

writes tests/conformance/data/{GeneralStateTests,BlockchainTests}.json.xz (one JSON object:
fixture path -> the fixture file's content), the repository's LICENSE and SOURCE.md (commit and
selection).  The selection is deterministic for a given commit and --seed: whole folders for the
areas PoAI replaced or py-evm gets wrong, a random sample of files of the rest.
"""

from __future__ import annotations

import argparse
import json
import lzma
import random
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "conformance" / "data"

# Whole folders: storage, selfdestruct, MCOPY, transient storage, blobs, access lists,
# CREATE/CREATE2, logs, refunds, reverts, transactions.
STATE_WHOLE = [
    "GeneralStateTests/stSStoreTest/", "GeneralStateTests/Cancun/",
    "GeneralStateTests/stCreate2/", "GeneralStateTests/stCreateTest/",
    "GeneralStateTests/stEIP2930/", "GeneralStateTests/stRefundTest/",
    "GeneralStateTests/stLogTests/", "GeneralStateTests/stSelfBalance/",
    "GeneralStateTests/stEIP3607/", "GeneralStateTests/stExtCodeHash/",
    "GeneralStateTests/stInitCodeTest/", "GeneralStateTests/stCodeSizeLimit/",
    "GeneralStateTests/stSystemOperationsTest/", "GeneralStateTests/stEIP150Specific/",
    "GeneralStateTests/Shanghai/", "GeneralStateTests/stChainId/",
    "GeneralStateTests/stRecursiveCreate/", "GeneralStateTests/stEIP158Specific/",
    "GeneralStateTests/stSLoadTest/", "GeneralStateTests/stTransactionTest/",
    "GeneralStateTests/stRevertTest/", "GeneralStateTests/Pyspecs/cancun/eip1153_tstore/",
    "GeneralStateTests/Pyspecs/cancun/eip5656_mcopy/",
    "GeneralStateTests/Pyspecs/cancun/eip6780_selfdestruct/",
    "GeneralStateTests/Pyspecs/cancun/eip7516_blobgasfee/",
    "GeneralStateTests/Pyspecs/berlin/",
    "GeneralStateTests/Pyspecs/shanghai/eip3651_warm_coinbase/",
]
# Sampled folders: (prefix, about this many cases).
STATE_SAMPLED = [
    ("GeneralStateTests/stEIP1559/", 300), ("GeneralStateTests/stBadOpcode/", 300),
    ("GeneralStateTests/stPreCompiledContracts/", 200),
    ("GeneralStateTests/stPreCompiledContracts2/", 120),
]
STATE_REST_CASES = 700  # a random sample of files from every other folder
STATE_EXCLUDED = ["GeneralStateTests/stTimeConsuming/",
                  "GeneralStateTests/stQuadraticComplexityTest/",
                  "GeneralStateTests/Pyspecs/cancun/eip4844_blobs/"]
# Official cases py-evm 0.12.1b1 gets wrong and PoAI corrects: always selected.
ALWAYS = [
    "GeneralStateTests/stSStoreTest/InitCollisionParis.json",
    "GeneralStateTests/stCreate2/create2collisionStorageParis.json",
    "GeneralStateTests/stExtCodeHash/dynamicAccountOverwriteEmpty_Paris.json",
    "GeneralStateTests/stEIP1559/tipTooHigh.json",
    "GeneralStateTests/stEIP1559/transactionIntinsicBug_Paris.json",
    "GeneralStateTests/Cancun/stEIP4844-blobtransactions/createBlobhashTx.json",
    "GeneralStateTests/Shanghai/stEIP3860-limitmeterinitcode/creationTxInitCodeSizeLimit.json",
    "GeneralStateTests/stEIP3607/transactionCollidingWithNonEmptyAccount_calls.json",
    "GeneralStateTests/stEIP3607/transactionCollidingWithNonEmptyAccount_callsItself.json",
    "GeneralStateTests/stEIP3607/transactionCollidingWithNonEmptyAccount_init_Paris.json",
    "GeneralStateTests/stEIP3607/transactionCollidingWithNonEmptyAccount_send_Paris.json",
]
BLOCK_WHOLE = ["BlockchainTests/ValidBlocks/", "BlockchainTests/InvalidBlocks/"]
BLOCK_EXCLUDED = ["BlockchainTests/ValidBlocks/bcExploitTest/"]  # 2 MB of minutes-long loops
BLOCK_ALWAYS = ["Blockchain" + "Tests/" + p for p in ALWAYS]


def git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True,
                          capture_output=True, text=True).stdout


def read_blobs(git_dir: str, shas: list[str]) -> list[bytes]:
    proc = subprocess.Popen(["git", "--git-dir", git_dir, "cat-file", "--batch"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    out = []
    for sha in shas:
        proc.stdin.write(sha.encode() + b"\n")
        proc.stdin.flush()
        size = int(proc.stdout.readline().split()[2])
        out.append(proc.stdout.read(size))
        proc.stdout.read(1)
    proc.stdin.close()
    proc.wait()
    return out


def cancun_cases(fixture_file: dict) -> int:
    return sum(len(case.get("post", {}).get("Cancun", [])) for case in fixture_file.values())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--git-dir", required=True, help="a git directory of ethereum/tests")
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--seed", type=int, default=21)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    commit = git(args.git_dir, "rev-parse", args.commit).strip()
    listing = git(args.git_dir, "ls-tree", "-r", "-l", commit, "GeneralStateTests",
                  "BlockchainTests/ValidBlocks", "BlockchainTests/InvalidBlocks",
                  *BLOCK_ALWAYS)
    files: dict[str, str] = {}
    for line in listing.splitlines():
        meta, path = line.split("\t", 1)
        sha, size = meta.split()[2:4]
        if path.endswith(".json") and size.isdigit():  # absent blobs are skipped
            files[path] = sha
    state_paths = sorted(p for p in files if p.startswith("GeneralStateTests/"))
    contents = dict(zip(state_paths, read_blobs(args.git_dir, [files[p] for p in state_paths]),
                        strict=True))
    parsed = {p: json.loads(b) for p, b in contents.items()}

    chosen: set[str] = {p for p in state_paths if p.startswith(tuple(STATE_WHOLE))}
    chosen |= set(ALWAYS) & set(state_paths)
    for prefix, target in STATE_SAMPLED:
        pool = [p for p in state_paths if p.startswith(prefix) and p not in chosen]
        rng.shuffle(pool)
        n = sum(cancun_cases(parsed[p]) for p in chosen if p.startswith(prefix))
        for p in pool:
            if n >= target:
                break
            chosen.add(p)
            n += cancun_cases(parsed[p])
    covered = tuple(STATE_WHOLE) + tuple(p for p, _ in STATE_SAMPLED) + tuple(STATE_EXCLUDED)
    rest = [p for p in state_paths if not p.startswith(covered)]
    rng.shuffle(rest)
    n = 0
    for p in rest:
        if n >= STATE_REST_CASES:
            break
        c = cancun_cases(parsed[p])
        if 0 < c <= 40:  # no single file dominates the sample
            chosen.add(p)
            n += c
    state = {p: parsed[p] for p in sorted(chosen) if cancun_cases(parsed[p])}

    block_paths = sorted(p for p in files if p.startswith(tuple(BLOCK_WHOLE) + tuple(BLOCK_ALWAYS))
                         and not p.startswith(tuple(BLOCK_EXCLUDED)))
    blocks = {p: json.loads(b) for p, b in
              zip(block_paths, read_blobs(args.git_dir, [files[p] for p in block_paths]),
                  strict=True)}

    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in (("GeneralStateTests", state), ("BlockchainTests", blocks)):
        raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        (OUT / f"{name}.json.xz").write_bytes(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))
    (OUT / "LICENSE").write_text(git(args.git_dir, "show", f"{commit}:LICENSE"))
    n_state = sum(cancun_cases(f) for f in state.values())
    n_block = sum(len(f) for f in blocks.values())
    (OUT / "SOURCE.md").write_text(
        "# ethereum/tests fixtures\n\n"
        f"Selected from https://github.com/ethereum/tests at commit `{commit}` by\n"
        f"`scripts/conformance_fixtures.py --seed {args.seed}` (the selection rules are in that\n"
        "script). The fixtures are the ethereum/tests authors' work, under the licence in\n"
        "`LICENSE` beside this file, unchanged except for being gathered into one compressed JSON\n"
        "object per kind (fixture path -> file content).\n\n"
        f"- GeneralStateTests.json.xz: {len(state)} files, {n_state} Cancun cases\n"
        f"- BlockchainTests.json.xz: {len(blocks)} files, {n_block} tests\n")
    print(f"{len(state)} state files ({n_state} Cancun cases), "
          f"{len(blocks)} blockchain files ({n_block} tests) -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
