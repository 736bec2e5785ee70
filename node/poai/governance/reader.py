"""Read ModelRegistry and DatasetDAO from a py-evm state: which model snapshot and which dataset
governance made active for an epoch.

Reads are eth_call-like: a static message call straight into the EVM against the given state
(`chain.get_vm(header).state` is the state after `header`), with no transaction, so there is no
sender, nonce, balance or gas-price check (py-evm's SpoofTransaction path still checks nonces),
and the state is rolled back afterwards. ABIs come from the committed genesis contracts asset,
which the asset's staleness test keeps equal to bindings/abi.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

from eth.abc import StateAPI
from eth.exceptions import Revert
from eth.vm.message import Message
from eth_abi.abi import decode, encode
from eth_typing import Address
from eth_utils.abi import (
    function_abi_to_4byte_selector,
    get_abi_input_types,
    get_abi_output_types,
)
from lru import LRU

from poai.bindings.errors import ErrorTable, decode_revert_data
from poai.compat.pyevm import clean_storage_root
from poai.governance.contracts import DATASET_DAO, REGISTRY, load_genesis_contracts

CALL_GAS = 30_000_000  # a view of ours needs well under 1M; the bound only stops a runaway call
_CALLER = Address(b"\x00" * 20)


class GovernanceReadError(RuntimeError):
    """A view call failed: no contract at the address, a revert (decoded when the ABI names the
    error) or an out-of-gas; or the contract returned something that breaks its own rules."""


@dataclass(frozen=True)
class SnapshotInfo:
    """A ModelRegistry snapshot: the trunk blob and the expert blob of every slot (sha256)."""

    trunk_hash: bytes
    expert_hashes: tuple[tuple[bytes, ...], ...]  # [layer][expert]
    snapshot_id: int
    expert_ids: tuple[tuple[int, ...], ...] = ()  # [layer][expert] -> registry expert id


@dataclass(frozen=True)
class DatasetInfo:
    """A DatasetDAO dataset: the encrypted file's sha256, its record count and its key (None
    while the key has not been revealed on chain)."""

    content_hash: bytes
    record_count: int
    key: bytes | None
    dataset_id: int


@functools.cache
def _abi(contract: str) -> dict[str, dict[str, Any]]:
    """Functions and errors of a contract's ABI by name (from the committed asset)."""
    entries = load_genesis_contracts().abis[contract]
    return {str(e["name"]): e for e in entries if e.get("type") in ("function", "error")}


@functools.cache
def _errors(contract: str) -> ErrorTable:
    return ErrorTable([load_genesis_contracts().abis[contract]])


def _decode_revert(contract: str, data: bytes) -> str:
    return str(decode_revert_data(data, _errors(contract)))


def call_view(
    state: StateAPI, address: bytes, contract: str, fn: str, *args: Any
) -> tuple[Any, ...]:
    """Calls view `fn` of `contract` at `address` against `state`; returns the decoded outputs.

    The call is static (a write in it fails) and `state` is left exactly as it was.
    """
    entry = _abi(contract).get(fn)
    if entry is None or entry["type"] != "function":
        raise GovernanceReadError(f"{contract} has no function {fn}")
    to = Address(address)
    code = state.get_code(to)
    if not code:
        raise GovernanceReadError(f"no contract code at 0x{address.hex()} (expected {contract})")
    selector = function_abi_to_4byte_selector(entry)  # type: ignore[arg-type]
    data = selector + encode(get_abi_input_types(entry), list(args))  # type: ignore[arg-type]
    message = Message(
        gas=CALL_GAS, to=to, sender=_CALLER, value=0, data=data, code=code, is_static=True
    )
    context = state.get_transaction_context_class()(gas_price=0, origin=_CALLER)
    snapshot = state.snapshot()
    try:
        computation = state.computation_class.apply_message(state, message, context)
    finally:
        state.revert(snapshot)
    where = f"{contract}.{fn}{tuple(args)!r} at 0x{address.hex()}"
    if computation.is_error:
        error = computation.error
        if isinstance(error, Revert):
            raise GovernanceReadError(f"{where}: {_decode_revert(contract, computation.output)}")
        raise GovernanceReadError(f"{where}: {type(error).__name__}: {error}")
    try:
        return tuple(decode(get_abi_output_types(entry), computation.output))  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - eth_abi raises several decoding error types
        raise GovernanceReadError(f"{where}: undecodable output: {exc}") from exc


def storage_fingerprint(state: StateAPI, address: bytes) -> tuple[bytes, bytes] | None:
    """(code hash, storage root) of the account at `address`: equal fingerprints mean equal
    code and storage, so equal results of any view that reads only its own storage.

    None when `state` holds unsaved storage changes of that account (its recorded storage
    root would then be stale) or is not py-evm's account-backed state."""
    root = clean_storage_root(state, Address(address))
    if root is None:
        return None
    return bytes(state.get_code_hash(Address(address))), root


# Snapshot records (shape, trunk, every slot's expert) by (registry fingerprint, snapshot id):
# 35 of the 37 view calls of an epoch's reading, and the same result every epoch until
# governance writes to the registry. Keys name contents, so branches and nodes never mix.
_SNAPSHOTS: Any = LRU(64)
_SNAPSHOTS_LOCK = threading.Lock()


def active_snapshot(state: StateAPI, registry_addr: bytes, epoch: int) -> SnapshotInfo:
    """The snapshot ModelRegistry names as active at `epoch`, with every slot's blob hash."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    (snapshot_id,) = call_view(state, registry_addr, REGISTRY, "activeSnapshot", epoch)
    return snapshot_by_id(state, registry_addr, int(snapshot_id))


def snapshot_by_id(state: StateAPI, registry_addr: bytes, snapshot_id: int) -> SnapshotInfo:
    """ModelRegistry's snapshot `snapshot_id`, with every slot's blob hash
    (GovernanceReadError naming UnknownSnapshot when there is none)."""
    fingerprint = storage_fingerprint(state, registry_addr)
    key = (bytes(registry_addr), fingerprint, int(snapshot_id))
    if fingerprint is not None:
        with _SNAPSHOTS_LOCK:
            known = _SNAPSHOTS.get(key)
        if known is not None:
            return known  # type: ignore[no-any-return]
    info = _read_snapshot(state, registry_addr, int(snapshot_id))
    if fingerprint is not None:
        with _SNAPSHOTS_LOCK:
            _SNAPSHOTS[key] = info
    return info


def schedule(state: StateAPI, registry_addr: bytes) -> list[tuple[int, int]]:
    """ModelRegistry's activation schedule: (activation epoch, snapshot id) entries in order
    (the first is the genesis snapshot at epoch 0)."""
    (n,) = call_view(state, registry_addr, REGISTRY, "scheduleLength")
    out = []
    for pos in range(int(n)):
        epoch, snap = call_view(state, registry_addr, REGISTRY, "scheduleAt", pos)
        out.append((int(epoch), int(snap)))
    return out


def snapshot_claim(state: StateAPI, registry_addr: bytes, snapshot_id: int) -> tuple[int, bytes]:
    """(base snapshot id, claim bytes) of a snapshot's quality claim; (0, b"") when none."""
    base, claim = call_view(state, registry_addr, REGISTRY, "snapshotClaim", snapshot_id)
    return int(base), bytes(claim)


def _read_snapshot(state: StateAPI, registry_addr: bytes, snapshot_id: int) -> SnapshotInfo:
    (layers,) = call_view(state, registry_addr, REGISTRY, "layers")
    (per_layer,) = call_view(state, registry_addr, REGISTRY, "expertsPerLayer")
    ((trunk, _registrant, expert_ids),) = call_view(
        state, registry_addr, REGISTRY, "snapshot", snapshot_id
    )
    if len(expert_ids) != layers * per_layer:
        raise GovernanceReadError(
            f"snapshot {snapshot_id} has {len(expert_ids)} experts, shape is {layers}x{per_layer}"
        )
    rows: list[list[bytes]] = [[] for _ in range(layers)]
    ids: list[list[int]] = [[] for _ in range(layers)]
    for slot, expert_id in enumerate(expert_ids):
        ((_name, layer, index, payload, _size, _contributor, _deps),) = call_view(
            state, registry_addr, REGISTRY, "expert", expert_id
        )
        if (layer, index) != divmod(slot, per_layer):
            raise GovernanceReadError(
                f"snapshot {snapshot_id} slot {slot} holds expert {expert_id} of "
                f"layer {layer} index {index}"
            )
        rows[layer].append(bytes(payload))
        ids[layer].append(int(expert_id))
    return SnapshotInfo(
        trunk_hash=bytes(trunk),
        expert_hashes=tuple(tuple(row) for row in rows),
        snapshot_id=int(snapshot_id),
        expert_ids=tuple(tuple(row) for row in ids),
    )


def active_dataset(state: StateAPI, dao_addr: bytes, epoch: int) -> DatasetInfo:
    """The dataset DatasetDAO names as active at `epoch`; `key` is None until it is revealed."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    dataset_id, content_hash, records, key, revealed = call_view(
        state, dao_addr, DATASET_DAO, "activeDataset", epoch
    )
    return DatasetInfo(
        content_hash=bytes(content_hash),
        record_count=int(records),
        key=bytes(key) if revealed else None,
        dataset_id=int(dataset_id),
    )


__all__ = [
    "DatasetInfo",
    "GovernanceReadError",
    "SnapshotInfo",
    "active_dataset",
    "active_snapshot",
    "call_view",
    "schedule",
    "snapshot_by_id",
    "snapshot_claim",
    "storage_fingerprint",
]
