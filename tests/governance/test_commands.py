"""`poai expert train -> expert propose -> gov evaluate/vote/queue/execute` against a REAL mining
node on the bundled fast dev chain, through the CLI only, then a second, non-mining node that
syncs over P2P with no file copied; and the CLI's error words."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from poai.cli import main as cli_main
from poai.governance.commands import decode_revert
from support.crashkit import kill_across_the_boundary, kills_per_case, snapshot_datadir
from support.forkserver import ForkServer
from support.nodeproc import NodeProcess

ROOT = Path(__file__).resolve().parents[2]

BUDGET_S = 900  # a guard against a hang (the loaded 2-core box: ~6 min to the boundary)


def test_reverts_are_decoded_into_words() -> None:
    sel = keccak(text="GovernorUnexpectedProposalState(uint256,uint8,bytes32)")[:4]
    data = sel + encode(["uint256", "uint8", "bytes32"], [7, 0, b"\x00" * 31 + b"\x02"])
    assert decode_revert(data) == ("GovernorUnexpectedProposalState(proposalId=7, current=0, "
                                   "expectedStates=0x" + "00" * 31 + "02)")
    sel = keccak(text="ChunkOutOfOrder(uint256,uint256,uint256)")[:4]
    assert decode_revert(sel + encode(["uint256"] * 3, [5, 0, 1])) == \
        "ChunkOutOfOrder(expertId=5, expected=0, got=1)"
    err = keccak(text="Error(string)")[:4] + encode(["string"], ["nope"])
    assert decode_revert(err) == "reverted: nope"
    assert decode_revert(b"") == "reverted without a reason"
    assert decode_revert(b"\xde\xad\xbe\xef").startswith("reverted with unknown error 0xdeadbeef")


@pytest.mark.parametrize(("args", "message"), [
    (["gov", "stake", "1", "--key", "0x12", "--rpc", "http://127.0.0.1:9"], "32 bytes"),
    (["gov", "stake", "1", "--key", "zz", "--rpc", "http://127.0.0.1:9"], "not hex"),
    (["gov", "proposals", "--rpc", "http://127.0.0.1:9"], "no node at"),
    (["expert", "propose", "--snapshot", "ab" * 32, "--datadir", "/nonexistent",
      "--rpc", "http://127.0.0.1:9"], "missing from store"),
    (["gov", "upload-dataset", "/nonexistent/data.poaids", "--rpc", "http://127.0.0.1:9"],
     "No such file"),
    (["gov", "upload-dataset", "/dev/null", "--rpc", "http://127.0.0.1:9"], "is empty"),
])
def test_bad_input_is_one_line(args: list[str], message: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def test_keystore_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from eth_account import Account

    ks = tmp_path / "key.json"
    ks.write_text(json.dumps(Account.encrypt(b"\x01" * 32, "right")))
    (tmp_path / "pw").write_text("wrong\n")
    args = ["gov", "stake", "1", "--keystore", str(ks), "--password-file", str(tmp_path / "pw"),
            "--rpc", "http://127.0.0.1:9"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"keystore {ks}" in err
    (tmp_path / "pw").write_text("right\n")
    assert cli_main(args) == 2  # decrypted: now it is the missing node that fails
    assert "no node at" in capsys.readouterr().err


def _poai(*args: str) -> Run:
    """`poai ARGS` in this process (a fresh interpreter per command takes 5-17 s on the loaded
    test machine: longer than a dev chain's voting period)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_main(list(args))
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return Run(code, out.getvalue(), err.getvalue())


def _models(url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(url + "/v1/models", timeout=60) as resp:
        return list(json.loads(resp.read())["data"])


def _post(url: str, body: dict[str, object]) -> dict[str, object]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return dict(json.loads(resp.read()))


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(900 + 6 * kills_per_case())  # 270 s on CI's 2 cores; the 100-kill form more
def test_model_change_through_the_cli(tmp_path: Path) -> None:
    started = time.monotonic()
    datadir = tmp_path / "datadir"
    proc = NodeProcess(datadir, Path("devnet-fast"), log_path=tmp_path / "node.log")
    follower: NodeProcess | None = None
    servers: list[ForkServer] = []
    try:
        rpc = ("--rpc", proc.url)
        key = ("--dev-account", "0")

        def head(*r: str) -> int:
            # The node answers nothing that needs its lock while it evaluates the quality gate
            # at the boundary (two models x 256 windows; 16 s measured at load 25): retry.
            out = _poai("status", *r, "--json")
            return int(json.loads(out.stdout)["head"]) if out.returncode == 0 else -1

        genesis_manifest = _models(proc.url)[1]["id"]
        # Trained on the public validation text itself: a short run that clears devnet-fast's
        # quality gate (minDelta 0.001 nats/byte; ~0.0025 measured).
        from poai.model.genesis import VALIDATION_TEXT

        r = _poai("expert", "train", "--layer", "1", "--expert", "2", "--data",
                  str(VALIDATION_TEXT), "--steps", "20", "--lr", "2e-3", "--eval-windows", "16",
                  "--datadir", str(tmp_path / "work"), "--json")
        assert r.returncode == 0, r.stderr
        trained = json.loads(r.stdout)
        for args in (("gov", "stake", "1000"), ("gov", "delegate")):
            r = _poai(*args, *rpc, *key)
            assert r.returncode == 0, r.stderr
        # A dataset file on chain (3 chunks): every node writes it into <datadir>/datasets.
        dataset = tmp_path / "next.poaids"
        dataset.write_bytes(os.urandom(250_000))
        r = _poai("gov", "upload-dataset", str(dataset), "--json", *rpc, *key)
        assert r.returncode == 0 and "chunk 3/3 on chain" in r.stderr, r.stderr
        uploaded = json.loads(r.stdout)
        assert uploaded["chunks"] == 3 and not uploaded["already_on_chain"], uploaded
        r = _poai("gov", "upload-dataset", str(dataset), "--json", *rpc, *key)
        assert r.returncode == 0 and json.loads(r.stdout)["already_on_chain"], r.stderr
        held = datadir / "datasets" / f"{uploaded['sha256']}.poaids"
        r = _poai("expert", "propose", "--snapshot", trained["snapshot"], "--datadir",
                  str(tmp_path / "work"), *rpc, *key)
        assert r.returncode == 0, r.stderr
        proposal = json.loads(r.stdout)
        pid, epoch = proposal["proposal"], proposal["activation_epoch"]
        assert proposal["base"] == 1 and proposal["claimed_delta"] >= 0.001, proposal
        assert "validation claim: 256 windows" in r.stderr
        # Before voting: recompute the claim locally from the chain's snapshot.
        r = _poai("gov", "evaluate", pid, "--datadir", str(datadir), "--eval-windows", "16",
                  "--json", *rpc)
        assert r.returncode == 0, r.stderr
        ev = json.loads(r.stdout)
        assert ev["changed"] == ["layer1.expert2"] and ev["snapshot"] == proposal["snapshot"]
        routed = ev["routed"]["layer1.expert2"]
        assert routed["tokens"] > 0 and routed["before"] != routed["after"]
        assert ev["overall_before"] == pytest.approx(trained["validation"]["overall_before"],
                                                     abs=1e-4)
        gate = ev["gate"]  # the node's own decision, recomputed before the vote
        assert gate["accepted"] and gate["base"] == 1, gate
        assert gate["claimed_delta"] == pytest.approx(proposal["claimed_delta"], abs=1e-6)
        assert gate["recomputed_delta"] == pytest.approx(gate["claimed_delta"], abs=2e-3)
        # Too early: the Governor's own error, in words.
        r = _poai("gov", "queue", pid, *rpc, *key)
        assert r.returncode == 2 and "GovernorUnexpectedProposalState" in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1

        def state() -> str:
            out = _poai("gov", "show", pid, "--json", *rpc)
            assert out.returncode == 0, out.stderr
            return str(json.loads(out.stdout)["state"])

        def wait_for(want: str) -> None:
            while state() != want:
                assert time.monotonic() - started < BUDGET_S, proc.text()[-2000:]
                time.sleep(1)

        wait_for("Active")
        r = _poai("gov", "vote", pid, "for", "--reason", "lower loss", *rpc, *key)
        assert r.returncode == 0, r.stderr
        wait_for("Succeeded")
        assert _poai("gov", "queue", pid, *rpc, *key).returncode == 0
        while True:
            r = _poai("gov", "execute", pid, *rpc, *key)
            if r.returncode == 0:
                break
            assert "TimelockUnexpectedOperationState" in r.stderr, r.stderr
            assert time.monotonic() - started < BUDGET_S
            time.sleep(1)
        # The worst moment to crash (issue 20): a copy of the data dir taken a few blocks before
        # the boundary (SIGSTOP: the files a SIGKILL would leave) is where killed nodes start.
        servers.append(ForkServer())  # imports now, while the chain reaches the boundary
        while head(*rpc) < epoch * 8 - 3:
            assert proc.proc.poll() is None and time.monotonic() - started < BUDGET_S
            time.sleep(0.5)
        template = tmp_path / "before-boundary"
        snapshot_datadir(proc.proc.pid, datadir, template)
        assert head(*rpc) < epoch * 8, "the copy must end before the boundary"
        listed = _poai("gov", "proposals", *rpc)
        assert re.search(rf"{pid}\s+Executed", listed.stdout), listed.stdout
        r = _poai("gov", "vote", pid, "against", *rpc, *key)  # not active any more
        assert r.returncode == 2 and r.stderr.count("\n") == 1
        words = f"GovernorUnexpectedProposalState(proposalId={pid}, current=7, "
        assert words in r.stderr, r.stderr
        # The node mines the new epoch with the new snapshot; the blob came from the chain.
        while head(*rpc) < epoch * 8 + 1:
            assert proc.proc.poll() is None and time.monotonic() - started < BUDGET_S, \
                proc.text()[-3000:]
            time.sleep(1)
        assert (datadir / "blobs" / trained["blob"]).is_file()
        assert held.read_bytes() == dataset.read_bytes()
        assert "cannot build the quiz yet" not in proc.text()
        assert re.search(rf"epoch {epoch} .*model snapshot {proposal['snapshot']} manifest "
                         rf"{trained['snapshot']}", proc.text()), proc.text()[-3000:]
        assert re.search(rf"quality gate: snapshot {proposal['snapshot']} against snapshot 1: "
                         r"claim holds", proc.text()), proc.text()[-3000:]
        from support.nodeproc import rpc_call

        model = rpc_call(proc.url, "poai_epoch", hex(epoch * 8 + 1))["model"]
        assert model == {"snapshot": proposal["snapshot"], "scheduledSnapshot":
                         proposal["snapshot"], "manifest": trained["snapshot"], "dataset": 1,
                         "qualityGate": "passed"}, model
        # The inference API follows the switch without a restart: the new snapshot answers.
        models = _models(proc.url)
        assert models[1]["id"] == trained["snapshot"] != genesis_manifest, models
        reply = _post(proc.url + "/v1/chat/completions", {
            "model": trained["snapshot"], "max_tokens": 8,
            "messages": [{"role": "user", "content": "def"}]})
        assert reply["system_fingerprint"] == "poai-" + trained["snapshot"][:16], reply
        assert reply["usage"]["completion_tokens"] >= 1

        # A second, non-mining node syncs the chain over P2P: the blob comes from the chain's
        # upload blocks, nothing is copied, and it agrees with the miner past the boundary.
        addr = re.search(r"P2P listening on (/ip4/127\.0\.0\.1/\S+)", proc.text())
        assert addr, proc.text()[:3000]
        follower = NodeProcess(tmp_path / "follower", Path("devnet-fast"), mine=False,
                               log_path=tmp_path / "follower.log",
                               extra_args=("--p2p-port", "0", "--peer", addr.group(1)))
        target = epoch * 8 + 1
        f_rpc = ("--rpc", follower.url)
        while head(*f_rpc) < target:
            assert follower.proc.poll() is None and time.monotonic() - started < BUDGET_S, \
                follower.text()[-3000:]
            time.sleep(1)
        assert (tmp_path / "follower" / "blobs" / trained["blob"]).is_file()
        assert (tmp_path / "follower" / "datasets" / held.name).read_bytes() == \
            dataset.read_bytes()
        assert "cannot build the quiz yet" not in follower.text()
        block = hex(target)
        assert rpc_call(follower.url, "poai_epoch", hex(epoch * 8 + 1))["model"] == model
        assert rpc_call(follower.url, "eth_getBlockByNumber", block, False)["hash"] == \
            rpc_call(proc.url, "eth_getBlockByNumber", block, False)["hash"]
        follower.stop()
        follower = None

        # SIGKILL nodes syncing from the copy across the block that activates the snapshot.
        addresses = [rpc_call(proc.url, "eth_accounts")[0],
                     *rpc_call(proc.url, "poai_contracts").values()]
        proc.stop()
        crash = kill_across_the_boundary(servers[0], template, datadir, Path("devnet-fast"),
                                         addresses)
        assert crash["crash_kills"] >= 1 and max(crash["crash_heads"]) >= 1, crash
        print(json.dumps({"total_s": round(time.monotonic() - started, 1), **crash}))
    finally:
        for fs in servers:
            fs.close()
        if follower is not None:
            follower.stop()
        proc.stop()
