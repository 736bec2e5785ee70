"""The governance flow and the quality gate against a REAL node process over JSON-RPC (web3 +
the bindings).

The test starts `poai node --dev --mine --genesis devnet-fast` (the bundled fast dev chain:
difficulty 1, a block about once a second as the node never stamps a block ahead of the clock,
8-block epochs, a 30-block vote and a 5 s timelock) on a free loopback port. Then:
stake -> delegate -> register a real expert (a genesis expert blob, perturbed) with its bytes in
calldata (two uploadChunk transactions) and two snapshots using it, one with an honest quality
claim whose improvement is below the chain's minimum and one with a false claim -> propose
scheduleSnapshot of both (epochs E and E+1) -> vote -> queue -> wait the timelock -> execute.
The registry schedules both, but the quality gate keeps the genesis model: the node says why in
its log and in poai_epoch, mines E and E+1 with the genesis model (their seals verify with it
and not with the rejected one), and a non-mining node syncing over P2P decides the same.
Nothing is copied by hand: the node wrote the blob into `<datadir>/blobs` while importing the
upload blocks. (The passing case: tests/governance/test_commands.py.)
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import build_genesis_contracts as bgc  # scripts/, on pytest's pythonpath
import poai_bindings as B
import pytest
from eth_account import Account
from support.nodeproc import NodeProcess
from web3 import Web3

DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
EPOCH_BLOCKS = 8
VOTING_PERIOD = 30
TIMELOCK_S = 5
DEV_MODEL_CHANGE_S = 120  # issue 16: propose -> active at the epoch within 2 minutes in dev
BUDGET_S = 900  # a guard against a hang: whole test, startup and a follower's sync included
# (7 minutes to the follower measured at load 25 on the 2-core box)


def _genesis(tmp: Path) -> tuple[Path, dict[str, Any]]:
    """The bundled fast dev chain (`--genesis devnet-fast`): 1 s blocks at difficulty 1, 8-block
    epochs, a 30-block vote and a 5 s timelock."""
    from poai.chain.config import resolve_genesis_path

    path = resolve_genesis_path("devnet-fast")
    asset = json.loads(bgc.FAST_OUTPUT.read_text())
    assert asset["params"]["epoch_blocks"] == EPOCH_BLOCKS
    assert asset["params"]["voting_period_blocks"] == VOTING_PERIOD
    assert asset["params"]["timelock_delay_seconds"] == TIMELOCK_S
    return path, asset["contracts"]


def _new_expert_blob() -> bytes:
    """layer0.expert0 of the genesis model, 'fine-tuned' (scaled by 1.01)."""
    from poai.model.blobs import decode_tensors, encode_tensors
    from poai.model.genesis import genesis_manifest_hash, genesis_store
    from poai.model.snapshot import read_manifest

    store = genesis_store()
    digest = read_manifest(store, genesis_manifest_hash()).experts[0][0]
    tensors = decode_tensors(store.get(digest), digest)
    return encode_tensors({k: t * 1.01 for k, t in tensors.items()})


class Flow:
    def __init__(self, w3: Web3, node: NodeProcess, deadline: float) -> None:
        self.w3 = w3
        self.node = node
        self.deadline = deadline
        self.acct = Account.from_key(DEV_KEY)

    def check(self) -> None:
        assert self.node.proc.poll() is None, f"node exited:\n{self.node.text()[-3000:]}"
        assert time.monotonic() < self.deadline, f"over budget:\n{self.node.text()[-3000:]}"

    def send(self, fn: Any, value: int = 0) -> Any:
        tx = fn.build_transaction({"from": self.acct.address, "value": value,
                                   "nonce": self.w3.eth.get_transaction_count(self.acct.address)})
        h = self.w3.eth.send_raw_transaction(self.acct.sign_transaction(tx).raw_transaction)
        while True:
            self.check()
            try:
                r = self.w3.eth.get_transaction_receipt(h)
            except Exception:  # noqa: BLE001 - web3 raises TransactionNotFound while pending
                time.sleep(0.3)
                continue
            assert r["status"] == 1, f"{fn.fn_name} reverted"
            return r

    def wait_block(self, n: int) -> None:
        while self.w3.eth.block_number < n:
            self.check()
            time.sleep(0.3)

    def wait_log(self, pattern: str) -> re.Match[str]:
        while True:
            m = re.search(pattern, self.node.text())
            if m:
                return m
            self.check()
            time.sleep(0.3)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[NodeProcess, Path, Path, dict[str, Any]]]:
    genesis, contracts = _genesis(tmp_path)
    datadir = tmp_path / "datadir"
    proc = NodeProcess(datadir, genesis, log_path=tmp_path / "node.log")
    try:
        yield proc, datadir, genesis, contracts
    finally:
        proc.stop()


def _claims(blob: bytes, tmp: Path) -> tuple[bytes, bytes, str]:
    """(honest claim, false claim, manifest) of the genesis model with layer0.expert0 replaced by
    `blob`, against the genesis model: the gate's own functions, as `poai expert propose` runs
    them. The false claim says every window of the new model is 3 grid steps better."""
    from poai.chain.config import load_genesis_config
    from poai.chain.quality_gate import gate_params, model_window_losses
    from poai.model.genesis import genesis_manifest_hash, genesis_store
    from poai.model.snapshot import Manifest, read_manifest
    from poai.model.store import BlobStore
    from poai.quiz.gate import Claim, claim_for, encode_claim

    params = gate_params(load_genesis_config("devnet-fast"))
    genesis = genesis_store()
    g = read_manifest(genesis, genesis_manifest_hash())
    store = BlobStore(tmp / "claim-blobs")
    for h in g.blob_hashes():
        store.put(genesis.get(h))
    rows = [list(r) for r in g.experts]
    rows[0][0] = store.put(blob)
    manifest = store.put(Manifest(spec=g.spec, trunk=g.trunk,
                                  experts=tuple(tuple(r) for r in rows)).to_bytes())
    honest = claim_for(model_window_losses(genesis.root, genesis_manifest_hash(), params),
                       model_window_losses(store.root, manifest, params), params.grid_bits)
    assert honest.delta(params.grid_bits) < params.min_delta, "the test expert is too good"
    false = Claim(honest.base, tuple(max(0, q - 3) for q in honest.new))
    return encode_claim(honest), encode_claim(false), manifest


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(BUDGET_S + 120)  # its own budget is the guard; pytest's only a backstop
def test_quality_gate_keeps_the_model_on_a_real_node(
    node: tuple[NodeProcess, Path, Path, dict[str, Any]], tmp_path: Path,
) -> None:
    """Two snapshots win their vote but fail the quality gate: snapshot 2 (a perturbed expert
    with an honest claim: improvement below minDelta) from epoch E and snapshot 3 (the same
    model, a false claim) from E+1. Neither activates: the miner keeps mining with the genesis
    model and says why (log, poai_epoch), and a non-mining node that syncs over P2P agrees."""
    started = time.monotonic()
    proc, datadir, genesis, contracts = node
    w3 = Web3(Web3.HTTPProvider(proc.url, request_kwargs={"timeout": 60}))
    f = Flow(w3, proc, started + BUDGET_S)
    while not w3.is_connected():
        f.check()
        time.sleep(0.3)
    f.wait_block(1)  # the miner's worker has loaded the model
    t_first_block = time.monotonic() - started

    staked = B.StakedPOAI(w3, contracts["StakedPOAI"])
    gov = B.PoAIGovernor(w3, contracts["PoAIGovernor"])
    reg = B.ModelRegistry(w3, contracts["ModelRegistry"])
    assert reg.epochBlocks() == EPOCH_BLOCKS
    assert gov.votingPeriod() == VOTING_PERIOD

    me = f.acct.address
    f.send(staked.deposit(), value=1_000 * 10**18)
    f.send(staked.delegate(me))
    blob = _new_expert_blob()
    payload = hashlib.sha256(blob).digest()
    honest, false, manifest = _claims(blob, tmp_path)
    from poai.governance.payloads import chunk_hashes, split_chunks

    f.send(reg.registerExpert("layer0.expert0", 0, 0, payload, len(blob), chunk_hashes(blob),
                              [1]))
    for k, chunk in enumerate(split_chunks(blob)):
        f.send(reg.uploadChunk(reg.expertCount(), k, chunk))
    assert len(split_chunks(blob)) == 2
    experts = list(reg.snapshotExperts(1))
    experts[0] = reg.expertCount()
    trunk = bytes(reg.snapshot(1)[0])
    f.send(reg.registerClaimedSnapshot(trunk, experts, 1, honest))
    f.send(reg.registerClaimedSnapshot(trunk, experts, 1, false))
    assert reg.snapshotCount() == 3

    # Far enough ahead for delay + voting period + queue + timelock (~1 block/s).
    epoch = (w3.eth.block_number + 2 * VOTING_PERIOD + 2 * TIMELOCK_S + 12) // EPOCH_BLOCKS + 1
    calls = [bytes.fromhex(reg.contract.encode_abi("scheduleSnapshot", [2, epoch])[2:]),
             bytes.fromhex(reg.contract.encode_abi("scheduleSnapshot", [3, epoch + 1])[2:])]
    targets, values = [reg.address] * 2, [0, 0]
    desc = f"schedule snapshots 2 and 3 at epochs {epoch} and {epoch + 1}"
    desc_hash = Web3.keccak(text=desc)
    t_propose = time.monotonic()
    f.send(gov.propose(targets, values, calls, desc))
    pid = gov.hashProposal(targets, values, calls, desc_hash)
    f.wait_block(gov.proposalSnapshot(pid))
    f.send(gov.castVote(pid, 1))
    f.wait_block(gov.proposalDeadline(pid))
    f.send(gov.queue(targets, values, calls, desc_hash))
    eta = gov.proposalEta(pid)
    while w3.eth.get_block("latest")["timestamp"] < eta:
        f.check()
        time.sleep(0.3)
    f.send(gov.execute(targets, values, calls, desc_hash))
    assert (reg.activeSnapshot(epoch - 1), reg.activeSnapshot(epoch),
            reg.activeSnapshot(epoch + 1)) == (1, 2, 3)
    first = epoch * EPOCH_BLOCKS
    assert w3.eth.block_number < first - 1, "execution came too late for the chosen epoch"
    t_executed = time.monotonic() - started

    # The node took the new expert's blob from the chain: it never waits for it.
    digest = payload.hex()
    assert (datadir / "blobs" / digest).read_bytes() == blob
    f.wait_block(first + EPOCH_BLOCKS + 2)  # into E+1
    t_active = time.monotonic() - t_propose
    text = proc.text()
    assert "cannot build the quiz yet" not in text
    assert re.search(rf"expert \d+ payload {digest} stored from the chain", text)
    from poai.model.genesis import genesis_manifest_hash

    g_manifest = genesis_manifest_hash()
    f.wait_log(rf"epoch {epoch} .*model snapshot 1 manifest {g_manifest}")
    f.wait_log(rf"epoch {epoch}.*snapshot 2 \(scheduled from epoch {epoch}\) rejected by the "
               r"quality gate: claimed improvement -?[0-9.]+ nats/byte is below the minimum")
    f.wait_log(rf"epoch {epoch + 1}.*snapshot 3 \(scheduled from epoch {epoch + 1}\) rejected "
               r"by the quality gate: false claim")
    assert re.search(r"mined block #\d+ 0x[0-9a-f]{64}", proc.text())
    t_done = time.monotonic() - started

    from support.nodeproc import rpc_call

    def model_at(url: str, number: int) -> dict[str, Any]:
        return dict(rpc_call(url, "poai_epoch", hex(number))["model"])

    at_e, at_e1 = model_at(proc.url, first + 1), model_at(proc.url, first + EPOCH_BLOCKS + 1)
    assert (at_e["snapshot"], at_e["scheduledSnapshot"], at_e["manifest"]) == (1, 2, g_manifest)
    assert "below the minimum" in at_e["qualityGate"]
    assert (at_e1["snapshot"], at_e1["scheduledSnapshot"]) == (1, 3)
    assert "false claim" in at_e1["qualityGate"]

    # A non-mining node syncs over P2P, judges both snapshots itself, and agrees.
    addr = re.search(r"P2P listening on (/ip4/127\.0\.0\.1/\S+)", proc.text())
    assert addr, proc.text()[:3000]
    follower = NodeProcess(tmp_path / "follower", genesis, mine=False,
                           log_path=tmp_path / "follower.log",
                           extra_args=("--p2p-port", "0", "--peer", addr.group(1)))
    t_follower = time.monotonic() - started
    try:
        target = first + EPOCH_BLOCKS + 2
        while (head := int(rpc_call(follower.url, "eth_blockNumber"), 16)) < target:
            assert follower.proc.poll() is None and time.monotonic() < started + BUDGET_S, \
                (f"follower at #{head} of {target} after {t_follower:.0f} s + "
                 f"{time.monotonic() - started - t_follower:.0f} s:\n{follower.text()[-3000:]}")
            time.sleep(0.5)
        for n in (first - 1, first + 1, target):
            assert rpc_call(follower.url, "eth_getBlockByNumber", hex(n), False)["hash"] == \
                rpc_call(proc.url, "eth_getBlockByNumber", hex(n), False)["hash"]
        assert model_at(follower.url, first + 1) == at_e
        assert model_at(follower.url, first + EPOCH_BLOCKS + 1) == at_e1
        assert "cannot build the quiz yet" not in follower.text()
    finally:
        follower.stop()
    proc.stop()

    _check_seals(datadir, genesis, epoch, manifest)
    assert t_active <= DEV_MODEL_CHANGE_S + EPOCH_BLOCKS * 2, \
        f"propose -> E+1 took {t_active:.0f} s"
    print(json.dumps({"first_block_s": round(t_first_block, 1),
                      "propose_to_epoch_s": round(t_active, 1),
                      "executed_s": round(t_executed, 1), "gate_epochs_mined_s": round(t_done, 1),
                      "follower_started_s": round(t_follower, 1),
                      "total_s": round(time.monotonic() - started, 1)}))


def _check_seals(datadir: Path, genesis: Path, epoch: int, rejected: str) -> None:
    """E's blocks carry seals of the genesis model: they verify with a QuizContext built here by
    hand (genesis manifest and dataset, E's key) and not with the rejected snapshot's."""
    from poai.chain.config import load_genesis_config
    from poai.consensus.seal_hash import seal_hash
    from poai.model.config import set_consensus_threads
    from poai.node import Node
    from poai.quiz.context import QuizContext
    from poai.quiz.epoch import epoch_key
    from poai.quiz.seal import InvalidSeal, verify_seal

    set_consensus_threads()
    config = load_genesis_config(genesis)
    n = Node(datadir, config)
    n.start()
    try:
        chain = n.chain
        seed = chain.get_canonical_block_header_by_number(epoch * EPOCH_BLOCKS - 1)
        headers = [chain.get_canonical_block_header_by_number(epoch * EPOCH_BLOCKS + i)
                   for i in range(3)]
        assert n.quiz_context(headers[0]).manifest_hash == config.model_manifest
    finally:
        n.stop()

    def ctx(manifest: str, blob_dir: Path) -> QuizContext:
        return QuizContext(params=config.quiz, epoch_key=epoch_key(seed.hash, epoch),
                           manifest_hash=manifest, blob_dir=str(blob_dir),
                           dataset_path=str(config.dataset.path), dataset_key=config.dataset.key)

    kept = ctx(config.model_manifest, config.model_dir)
    other = ctx(rejected, datadir / "blobs")
    wrong = 0
    for h in headers:
        args = (seal_hash(h), int.from_bytes(h.nonce, "big"), h.mix_hash, h.difficulty)
        verify_seal(kept, *args)
        try:
            verify_seal(other, *args)
        except InvalidSeal:
            wrong += 1
    assert wrong >= 1, "the rejected model accepts every seal of E: is it the genesis model?"
