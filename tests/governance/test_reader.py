"""poai.governance.reader against py-evm state: the genesis snapshot and dataset, decoded
reverts, no state change, and the readings after a snapshot and a dataset scheduled through the
Governor and the timelock."""

from __future__ import annotations

from typing import Any

import pytest
from poai.governance.reader import (
    DatasetInfo,
    GovernanceReadError,
    active_dataset,
    active_snapshot,
    call_view,
)
from poai.model.genesis import genesis_dataset_info, genesis_manifest_hash, genesis_store
from poai.model.snapshot import read_manifest


def test_genesis_state_names_the_genesis_model_and_dataset(bench: Any) -> None:
    state = bench.state_at(0)
    c = bench.contracts
    manifest = read_manifest(genesis_store(), genesis_manifest_hash())
    for epoch in (0, 1, 1000):
        snap = active_snapshot(state, c.registry, epoch)
        assert snap.snapshot_id == 1
        assert snap.trunk_hash.hex() == manifest.trunk
        assert [[h.hex() for h in row] for row in snap.expert_hashes] == [
            list(row) for row in manifest.experts
        ]
    info = genesis_dataset_info()
    ds = active_dataset(state, c.dataset_dao, 0)
    assert ds == DatasetInfo(
        content_hash=bytes.fromhex(info["sha256"]),
        record_count=info["records"],
        key=bytes.fromhex(info["key"]),
        dataset_id=1,
    )


def test_reads_leave_the_state_untouched(bench: Any) -> None:
    state = bench.state_at(0)
    before = state.make_state_root()
    active_snapshot(state, bench.contracts.registry, 0)
    active_dataset(state, bench.contracts.dataset_dao, 0)
    assert state.make_state_root() == before
    assert state.make_state_root() == bench.backend.chain.get_canonical_head().state_root


def test_reverts_are_decoded_and_named(bench: Any) -> None:
    state = bench.state_at(0)
    named = r"ModelRegistry.snapshot\(7,\).*UnknownSnapshot\(snapshotId=7\)"
    with pytest.raises(GovernanceReadError, match=named):
        call_view(state, bench.contracts.registry, "ModelRegistry", "snapshot", 7)
    with pytest.raises(GovernanceReadError, match="SafeCastOverflowedUintDowncast"):
        active_dataset(state, bench.contracts.dataset_dao, 2**48)


def test_bad_address_function_and_epoch_are_refused(bench: Any) -> None:
    state = bench.state_at(0)
    with pytest.raises(GovernanceReadError, match="no contract code at 0x" + "11" * 20):
        active_snapshot(state, b"\x11" * 20, 0)
    with pytest.raises(GovernanceReadError, match="has no function nope"):
        call_view(state, bench.contracts.registry, "ModelRegistry", "nope")
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        active_snapshot(state, bench.contracts.registry, -1)
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        active_dataset(state, bench.contracts.dataset_dao, -1)
    # The DAO's address read as a registry: it has no such function, so the call reverts.
    with pytest.raises(GovernanceReadError, match="reverted"):
        active_snapshot(state, bench.contracts.dataset_dao, 0)


def test_a_write_inside_a_read_fails(bench: Any) -> None:
    """Reads are static calls: scheduleSnapshot (a write, and owner-only) cannot take effect."""
    state = bench.state_at(0)
    with pytest.raises(GovernanceReadError):
        call_view(state, bench.contracts.registry, "ModelRegistry", "registerSnapshot",
                  b"\x05" * 32, [1] * 32)
    assert call_view(state, bench.contracts.registry, "ModelRegistry", "snapshotCount") == (1,)


def test_scheduled_snapshot_is_active_from_its_epoch(flow: Any) -> None:
    b, e, eb = flow.bench, flow.activation_epoch, flow.epoch_blocks
    reg = b.contracts.registry
    seed = b.state_at(e * eb - 1)  # the state the first block of epoch E is built on
    before = active_snapshot(seed, reg, e - 1)
    assert before.snapshot_id == 1
    after = active_snapshot(seed, reg, e)
    assert after.snapshot_id == flow.snapshot_id
    assert after.trunk_hash == flow.trunk
    assert after.expert_hashes == flow.expert_hashes
    assert after.expert_hashes[0][0] != before.expert_hashes[0][0]
    assert after.expert_hashes[1:] == before.expert_hashes[1:]
    # Before the proposal executed, the same question had the genesis answer.
    assert active_snapshot(b.state_at(1), reg, e).snapshot_id == 1


def test_scheduled_dataset_key_is_none_until_revealed(flow: Any) -> None:
    b, e, eb = flow.bench, flow.activation_epoch, flow.epoch_blocks
    dao = b.contracts.dataset_dao
    at_seed = active_dataset(b.state_at(e * eb - 1), dao, e)
    assert at_seed.dataset_id == 2
    assert at_seed.content_hash == flow.dataset_sha256
    assert at_seed.record_count == flow.dataset_records
    assert at_seed.key is None
    assert active_dataset(b.state_at(flow.reveal_block - 1), dao, e).key is None
    revealed = active_dataset(b.state_at(flow.reveal_block), dao, e)
    assert revealed.key == flow.dataset_key
    assert active_dataset(b.state_at(flow.reveal_block), dao, e - 1).dataset_id == 1


def test_snapshot_records_are_read_once_per_registry_storage(bench: Any, monkeypatch: Any) -> None:
    """The expert records of a snapshot are read once per (registry code, storage, id): a later
    epoch over the same storage costs one view call, changed storage is read again."""
    from poai.governance import reader

    calls: list[str] = []
    real = reader.call_view

    def counting(state: Any, address: bytes, contract: str, fn: str, *args: Any) -> Any:
        calls.append(fn)
        return real(state, address, contract, fn, *args)

    monkeypatch.setattr(reader, "call_view", counting)
    monkeypatch.setattr(reader, "_SNAPSHOTS", reader.LRU(8))
    reg = bench.contracts.registry
    first = active_snapshot(bench.state_at(0), reg, 0)
    assert calls.count("expert") == 32
    calls.clear()
    assert active_snapshot(bench.state_at(0), reg, 5) == first  # another state object
    assert calls == ["activeSnapshot"]

    # Unsaved storage changes of the registry: its recorded root is stale, so no reuse.
    state = bench.state_at(0)
    state.set_storage(reg, 2**255, 1)
    assert reader.storage_fingerprint(state, reg) is None
    calls.clear()
    assert active_snapshot(state, reg, 0) == first
    assert calls.count("expert") == 32
    # Saved: a new storage root, a new key.
    state.persist()
    assert reader.storage_fingerprint(state, reg) not in (None, reader.storage_fingerprint(
        bench.state_at(0), reg))
    calls.clear()
    assert active_snapshot(state, reg, 0) == first
    assert calls.count("expert") == 32
