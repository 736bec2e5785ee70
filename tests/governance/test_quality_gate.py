"""The quality gate in the epoch reading (EpochAssetResolver.effective_snapshot): which snapshot
an epoch uses when ModelRegistry schedules snapshots whose claims pass or fail, on a real
py-evm chain with the genesis contracts (governance through Governor + timelock).

The claim's numeric check (poai.quiz.gate) is tested in tests/quiz/test_gate.py and on real
nodes in tests/contracts/test_governance_node.py; here the decision comes from a stand-in
judge that reads the claim's first byte, so the schedule walk is tested alone."""

from __future__ import annotations

import ast
from typing import Any

import poai_bindings as B
import pytest
from eth_tester.exceptions import TransactionFailed
from poai.chain.config import load_genesis_config
from poai.governance.commands import decode_revert
from poai.governance.epoch_context import (
    EpochAssetResolver,
    GateCase,
    GateDecision,
    GenesisAssets,
)
from poai.governance.reader import GovernanceReadError, call_view, snapshot_claim
from poai.model.store import BlobStore
from web3 import Web3
from web3.exceptions import ContractLogicError

CLAIM_BYTES = 4 * 256


def _claim(mark: int) -> bytes:
    return bytes([mark]) + bytes(CLAIM_BYTES - 1)


class Judge:
    """Accepts a claim whose first byte is 1; records each call."""

    def __init__(self) -> None:
        self.calls: list[GateCase] = []

    def __call__(self, case: GateCase) -> GateDecision:
        self.calls.append(case)
        ok = case.claim[0] == 1
        return GateDecision(ok, "claim holds" if ok else "false claim (stand-in)")


def _govern(b: Any, calls: list[tuple[Any, bytes]], desc: str) -> None:
    """Propose, vote, queue, wait the timelock and execute `calls` (target, calldata)."""
    gov = b.binding(B.PoAIGovernor, "PoAIGovernor")
    targets = [t for t, _ in calls]
    datas = [d for _, d in calls]
    values = [0] * len(calls)
    desc_hash = Web3.keccak(text=desc)
    b.send(gov.propose(targets, values, datas, desc))
    pid = gov.hashProposal(targets, values, datas, desc_hash)
    b.mine_to(gov.proposalSnapshot(pid) + 1)
    b.send(gov.castVote(pid, 1))
    b.mine_to(gov.proposalDeadline(pid) + 1)
    b.send(gov.queue(targets, values, datas, desc_hash))
    b.backend.time_travel(gov.proposalEta(pid) + 1)
    b.send(gov.execute(targets, values, datas, desc_hash))


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory,
          bench_tools: dict[str, Any]) -> dict[str, Any]:
    """Snapshots 2 (claim passes, base 1), 3 (claim fails, base 2), 4 (no claim), 5 (claim
    'passes' but measured against 1) and 6 (passes, base 2), scheduled at E, E+1, ..., E+4."""
    b = bench_tools["make_bench"]()
    register_with_payload = bench_tools["upload"]
    _new_expert_blob = bench_tools["new_expert_blob"]
    staked = b.binding(B.StakedPOAI, "StakedPOAI")
    reg = b.binding(B.ModelRegistry, "ModelRegistry")
    b.send(staked.deposit(), value=1_000 * 10**18)
    b.send(staked.delegate(b.account.address))
    blob = _new_expert_blob()
    expert = register_with_payload(b, reg, "layer0.expert0", 0, 0, blob, [1])
    blobs = tmp_path_factory.mktemp("gate")
    BlobStore(blobs / "blobs").put(blob)  # (a node's payload collector writes it)
    experts = list(reg.snapshotExperts(1))
    experts[0] = expert
    trunk = bytes(reg.snapshot(1)[0])
    b.send(reg.registerClaimedSnapshot(trunk, experts, 1, _claim(1)))  # 2
    b.send(reg.registerClaimedSnapshot(trunk, list(reg.snapshotExperts(1)), 2, _claim(0)))  # 3
    b.send(reg.registerSnapshot(trunk, experts))  # 4: no claim
    b.send(reg.registerClaimedSnapshot(trunk, list(reg.snapshotExperts(1)), 1, _claim(1)))  # 5
    b.send(reg.registerClaimedSnapshot(trunk, list(reg.snapshotExperts(1)), 2, _claim(1)))  # 6
    eb = reg.epochBlocks()
    e = reg.currentEpoch() + 3
    calls = [(reg.address, bytes.fromhex(
        reg.contract.encode_abi("scheduleSnapshot", [snap, e + i])[2:]))
        for i, snap in enumerate((2, 3, 4, 5, 6))]
    _govern(b, calls, "five snapshots")
    b.mine_to((e + 5) * eb)
    return {"bench": b, "epoch": e, "eb": eb, "blobs": blobs}


def _resolver(chain: dict[str, Any], judge: Judge | None) -> EpochAssetResolver:
    b = chain["bench"]
    genesis = GenesisAssets.from_chain_config(load_genesis_config())
    return EpochAssetResolver(b.contracts, genesis, chain["blobs"] / "blobs",
                              chain["blobs"] / "datasets", judge=judge)


def test_each_scheduled_snapshot_activates_only_if_its_claim_holds_against_the_one_before(
    chain: dict[str, Any],
) -> None:
    b, e = chain["bench"], chain["epoch"]
    judge = Judge()
    r = _resolver(chain, judge)
    seed = b.seed_state(chain["eb"])
    want = {
        e - 1: (1, 0, ""),
        e: (2, 0, ""),  # passes against 1
        e + 1: (2, 3, "snapshot 3 (scheduled from epoch {}) rejected by the quality gate: "
                      "false claim (stand-in); snapshot 2 stays"),
        e + 2: (2, 4, "snapshot 4 (scheduled from epoch {}) rejected by the quality gate: it "
                      "carries no quality claim; snapshot 2 stays"),
        e + 3: (2, 5, "snapshot 5 (scheduled from epoch {}) rejected by the quality gate: its "
                      "claim is measured against snapshot 1, but snapshot 2 is active before "
                      "it; snapshot 2 stays"),
        e + 4: (6, 0, ""),  # passes against 2, the snapshot in effect
    }
    for epoch, (snap, scheduled, note) in want.items():
        a = r.resolve(epoch, seed)
        assert (a.snapshot_id, a.scheduled_snapshot_id, a.gate_note) == \
            (snap, scheduled, note.format(epoch)), epoch
    # Each (snapshot, base) pair went to the judge once (decisions are cached by content);
    # snapshot 4 (no claim) and 5 (wrong base) never reach it.
    assert [(c.snapshot_id, c.base_id) for c in judge.calls] == [(2, 1), (3, 2), (6, 2)]
    assert judge.calls[0].base_manifest_hash == r.genesis.manifest_hash
    assert judge.calls[0].manifest_hash != judge.calls[0].base_manifest_hash
    # Snapshots 3, 5 and 6 name the genesis experts: the same manifest as snapshot 1.
    assert judge.calls[2].manifest_hash == judge.calls[1].manifest_hash == \
        judge.calls[0].base_manifest_hash


def test_without_a_judge_the_registry_decides(chain: dict[str, Any]) -> None:
    b, e = chain["bench"], chain["epoch"]
    r = _resolver(chain, None)
    seed = b.seed_state(chain["eb"])
    got = [r.resolve(k, seed).snapshot_id for k in range(e, e + 5)]
    assert got == [2, 3, 4, 5, 6]


def test_claims_are_read_from_the_registry(chain: dict[str, Any]) -> None:
    b, e = chain["bench"], chain["epoch"]
    state = b.state_at(b.head_number())
    reg = b.contracts.registry
    assert snapshot_claim(state, reg, 2) == (1, _claim(1))
    assert snapshot_claim(state, reg, 4) == (0, b"")
    assert snapshot_claim(state, reg, 1) == (0, b"")
    with pytest.raises(GovernanceReadError, match="UnknownSnapshot"):
        snapshot_claim(state, reg, 99)
    n = call_view(state, reg, "ModelRegistry", "scheduleLength")[0]
    assert n == 6
    assert call_view(state, reg, "ModelRegistry", "scheduleAt", 1) == (e, 2)


def _revert(b: Any, fn: Any) -> str:
    """The revert of a call of `fn` from the bench account, in the CLI's words."""
    try:
        fn.call({"from": b.account.address})
    except ContractLogicError as exc:
        assert isinstance(exc.data, str)
        return decode_revert(bytes.fromhex(exc.data[2:]))
    except TransactionFailed as exc:  # web3 over eth-tester: "execution reverted: b'...'"
        data = ast.literal_eval(str(exc.args[0]).removeprefix("execution reverted: "))
        assert isinstance(data, bytes), exc.args
        return decode_revert(data)
    raise AssertionError("the call did not revert")


def test_a_malformed_claim_is_refused_by_the_registry(chain: dict[str, Any]) -> None:
    b = chain["bench"]
    reg = b.binding(B.ModelRegistry, "ModelRegistry")
    experts = list(reg.snapshotExperts(1))
    trunk = bytes(reg.snapshot(1)[0])
    for claim in (b"\x01" * 10, b"", b"\x01" * (CLAIM_BYTES + 2)):
        assert _revert(b, reg.registerClaimedSnapshot(trunk, experts, 1, claim)) == \
            f"MalformedClaim(expectedBytes={CLAIM_BYTES}, gotBytes={len(claim)})"
    assert _revert(b, reg.registerClaimedSnapshot(trunk, experts, 77, _claim(1))) == \
        "UnknownSnapshot(snapshotId=77)"


def test_a_snapshot_naming_an_unregistered_or_incomplete_expert_is_refused(
    chain: dict[str, Any],
) -> None:
    import hashlib

    b = chain["bench"]
    reg = b.binding(B.ModelRegistry, "ModelRegistry")
    experts = list(reg.snapshotExperts(1))
    trunk = bytes(reg.snapshot(1)[0])
    assert _revert(b, reg.registerClaimedSnapshot(trunk, [*experts[:-1], 999], 1,
                                                  _claim(1))) == "UnknownExpert(expertId=999)"
    # An expert whose bytes never arrived (registered, no chunk uploaded).
    h = hashlib.sha256(b"never uploaded").digest()
    b.send(reg.registerExpert("layer3.expert7", 3, 7, h, 14, [h], []))
    eid = reg.expertCount()
    assert _revert(b, reg.registerClaimedSnapshot(trunk, [*experts[:-1], eid], 1,
                                                  _claim(1))) == \
        f"IncompletePayload(expertId={eid}, chunksReceived=0, chunks=1)"


def test_a_node_evaluates_pending_snapshots_before_their_boundary(
    chain: dict[str, Any], tmp_path: Any,
) -> None:
    """GovernedEpochAssets.prefetch_gate (a Node listener on each new head): the models the gate
    will need for snapshots still pending are evaluated off the chain lock, so the boundary only
    judges; nothing is started again while the registry's storage is unchanged."""
    import shutil

    from poai.chain.governed import GovernedEpochAssets

    b, e = chain["bench"], chain["epoch"]
    blobs = tmp_path / "blobs"
    shutil.copytree(chain["blobs"] / "blobs", blobs)
    assets = GovernedEpochAssets(load_genesis_config(), blobs, tmp_path / "datasets")
    state = b.state_at(e * chain["eb"] - 2)  # all five scheduled, none active yet
    thread = assets.prefetch_gate(state, e - 1)
    assert thread is not None
    thread.join(timeout=600)
    genesis = assets.resolver.genesis.manifest_hash
    cached = set(assets.gate._losses)
    assert genesis in cached and len(cached) == 2  # snapshot 2's model and the genesis model
    assert assets.prefetch_gate(state, e - 1) is None  # same registry storage: nothing new
    assert assets.prefetch_gate(b.state_at(b.head_number()), e + 5) is None  # nothing pending
