"""`poai node --dev` as a contract developer meets it (issue 19): no P2P unless asked, one-line
errors for a data dir in use (naming the holder) and bad paths, `poai status`
for people and for machines, and a max fee below the base fee refused by a real node."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from poai import cli
from support.nodeproc import NodeProcess, fast_genesis, free_port

pytestmark = pytest.mark.integration

DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def poai(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """`poai ARGS` in this process (a subprocess costs ~20 s of imports on a loaded machine)."""
    def run(*args: str) -> Result:
        capsys.readouterr()
        code = cli.main(list(args))
        out = capsys.readouterr()
        return Result(code, out.out, out.err)
    return run


def one_line_error(res: Result) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    err = res.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert not re.search(r"\b(remove|delete|rm )", err), err  # never invites deleting data
    return err


def test_dev_node_errors_status_and_pool_rules(tmp_path: Path, poai: Any) -> None:
    genesis = fast_genesis(tmp_path / "genesis.json")
    datadir = tmp_path / "dd"
    node = NodeProcess(datadir, genesis, mine=False, extra_args=("--no-api",))  # no P2P flag
    try:
        deadline = time.monotonic() + 120
        while "Listening on" not in node.text():  # printed after any "P2P listening on" line
            assert time.monotonic() < deadline and node.proc.poll() is None, node.text()
            time.sleep(0.2)
        assert "P2P listening" not in node.text()  # --dev alone runs without networking

        # A second node on the same data dir: names the first one, suggests no deletion.
        err = one_line_error(poai("node", "--dev", "--no-api", "--datadir", str(datadir),
                                  "--genesis", str(genesis), "--rpc-port", str(free_port())))
        assert f"is in use by process {node.proc.pid} (" in err and "poai.cli node" in err, err

        # status: aligned words for people, one JSON object for machines.
        text = poai("status", "--rpc", node.url)
        assert text.returncode == 0, text.stderr
        lines = text.stdout.strip().splitlines()
        assert [ln.split("  ")[0] for ln in lines[:3]] == ["Node", "Chain id", "Head"]
        starts = {len(ln) - len(ln[ln.index("  "):].lstrip()) for ln in lines}
        assert len(starts) == 1, lines  # every value starts in the same column
        assert "{" not in text.stdout and "Tx pool" in text.stdout
        status = json.loads(poai("status", "--rpc", node.url, "--json").stdout)
        assert status["chainId"] == node.chain_id and status["txpool"] == {"pending": 0,
                                                                           "queued": 0}

        # A max fee of 1 wei (below the base fee) is refused; the pending nonce stays.
        acct = Account.from_key(DEV_KEY)
        raw = acct.sign_transaction({"chainId": node.chain_id, "type": 2, "nonce": 0,
                                     "gas": 21000, "maxFeePerGas": 1, "maxPriorityFeePerGas": 1,
                                     "to": acct.address, "value": 1}).raw_transaction
        with pytest.raises(RuntimeError, match="max fee per gas less than block base fee"):
            node.call("eth_sendRawTransaction", "0x" + bytes(raw).hex())
        assert node.call("eth_getTransactionCount", acct.address, "pending") == "0x0"
    finally:
        node.stop()
    # (a P2P port in use: tests/integration/test_restart.py)


def test_bad_data_dir_paths_are_one_line_errors(tmp_path: Path, poai: Any) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for cmd in ("init", "node"):
        err = one_line_error(poai(cmd, "--datadir", str(afile / "sub")))
        assert "a part of the path is a file, not a directory" in err, err
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    err = one_line_error(poai("account", "new", "--datadir", str(afile / "sub"),
                              "--password-file", str(pw)))
    assert f"{afile / 'sub' / 'keystore'}: a part of the path is a file" in err, err
    err = one_line_error(poai("init", "--datadir", str(afile)))
    assert "is not a directory" in err
    if Path("/sys").is_dir():  # a path no user (root included) may create
        err = one_line_error(poai("init", "--datadir", "/sys/poai-datadir"))
        assert "permission denied" in err or "read-only" in err, err
