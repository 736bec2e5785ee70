"""Fixtures for the governance tests: a py-evm chain (eth-tester's PyEVMBackend: PragueVM,
NoProofConsensus) whose genesis holds the committed genesis_contracts.json alloc, and a real
governance flow on it — stake, delegate, propose (scheduleSnapshot + scheduleDataset), vote,
queue, wait the timelock, execute — driven with signed transactions through web3.

The chain is only the test bench for contract state; the reader under test reads py-evm state
(`chain.get_vm(header).state`) directly, as the node does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import poai_bindings as B
import pytest
from eth.abc import StateAPI
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from poai.governance.contracts import GenesisContracts, load_genesis_contracts
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

# Hardhat/anvil dev account 0: a public test key.
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
NEW_DATASET_KEY = hashlib.sha256(b"governance test dataset key").digest()


def tester_genesis_state(contracts: GenesisContracts, funded: bytes) -> dict[bytes, Any]:
    """eth-tester genesis state: the contracts' alloc plus one funded account."""
    state: dict[bytes, Any] = {
        funded: {"balance": 10**24, "nonce": 0, "code": b"", "storage": {}}
    }
    for addr, acct in contracts.alloc.items():
        state[bytes.fromhex(addr[2:])] = {
            "balance": int(acct["balance"], 16),
            "nonce": int(acct["nonce"], 16),
            "code": bytes.fromhex(acct["code"][2:]),
            "storage": {int(k, 16): int(v, 16) for k, v in acct["storage"].items()},
        }
    return state


@dataclass
class Bench:
    backend: PyEVMBackend
    w3: Web3
    contracts: GenesisContracts
    account: LocalAccount

    def send(self, fn: Any, value: int = 0) -> Any:
        tx = fn.build_transaction({
            "from": self.account.address,
            "value": value,
            "nonce": self.w3.eth.get_transaction_count(self.account.address),
        })
        h = self.w3.eth.send_raw_transaction(self.account.sign_transaction(tx).raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(h)
        assert receipt["status"] == 1, f"transaction {fn.fn_name} reverted"
        return receipt

    def head_number(self) -> int:
        return int(self.backend.chain.get_canonical_head().block_number)

    def mine_to(self, number: int) -> None:
        """Mines empty blocks until the canonical head is block `number`."""
        missing = number - self.head_number()
        assert missing >= 0, f"already past block {number}"
        if missing:
            self.backend.mine_blocks(missing)

    def state_at(self, number: int) -> StateAPI:
        """The state after canonical block `number` (what the node gets from get_vm(header))."""
        chain = self.backend.chain
        return chain.get_vm(chain.get_canonical_block_header_by_number(number)).state

    def seed_state(self, epoch_blocks: int) -> Callable[[int], StateAPI]:
        from poai.quiz.epoch import seed_block_number

        return lambda k: self.state_at(seed_block_number(k, epoch_blocks))

    def binding(self, cls: Any, name: str) -> Any:
        return cls(self.w3, Web3.to_checksum_address(self.contracts.addresses[name]))


def register_with_payload(b: Bench, reg: Any, name: str, layer: int, index: int, blob: bytes,
                          depends_on: list[int]) -> int:
    """registerExpert with the blob's chunk hashes, then one uploadChunk per chunk."""
    from poai.governance.payloads import chunk_hashes, split_chunks

    payload = hashlib.sha256(blob).digest()
    b.send(reg.registerExpert(name, layer, index, payload, len(blob), chunk_hashes(blob),
                              depends_on))
    expert_id = int(reg.expertCount())
    for k, chunk in enumerate(split_chunks(blob)):
        b.send(reg.uploadChunk(expert_id, k, chunk))
    return expert_id


def make_bench() -> Bench:
    contracts = load_genesis_contracts()
    account = Account.from_key(DEV_KEY)
    backend = PyEVMBackend(
        genesis_state=tester_genesis_state(contracts, bytes.fromhex(account.address[2:]))
    )
    w3 = Web3(EthereumTesterProvider(EthereumTester(backend)))
    w3.eth.default_account = account.address
    return Bench(backend, w3, contracts, account)


@pytest.fixture(scope="session")
def genesis_contracts() -> GenesisContracts:
    return load_genesis_contracts()


@pytest.fixture
def upload() -> Callable[..., int]:
    """:func:`register_with_payload` (test modules cannot import conftest)."""
    return register_with_payload


@pytest.fixture(scope="session")
def bench_tools() -> dict[str, Callable[..., Any]]:
    """make_bench, register_with_payload and a perturbed genesis expert blob, for module-scoped
    fixtures in test modules (which cannot import conftest)."""
    return {"make_bench": make_bench, "upload": register_with_payload,
            "new_expert_blob": _new_expert_blob}


@pytest.fixture
def bench() -> Bench:
    """A fresh chain at genesis."""
    return make_bench()


@dataclass
class Flow:
    bench: Bench
    epoch_blocks: int
    activation_epoch: int  # E: snapshot 2 and dataset 2 are scheduled for it
    snapshot_id: int
    trunk: bytes
    expert_hashes: tuple[tuple[bytes, ...], ...]
    new_expert_blob: bytes  # the one blob of snapshot 2 that is not a genesis blob
    dataset_file: Path
    dataset_sha256: bytes
    dataset_records: int
    dataset_key: bytes
    reveal_block: int  # block holding revealKey (in epoch E)


def _new_expert_blob() -> bytes:
    """A genesis expert's tensors, slightly changed: a 'fine-tuned' layer0.expert0 blob."""
    from poai.model.blobs import decode_tensors, encode_tensors
    from poai.model.genesis import genesis_manifest_hash, genesis_store
    from poai.model.snapshot import read_manifest

    store = genesis_store()
    digest = read_manifest(store, genesis_manifest_hash()).experts[0][0]
    tensors = decode_tensors(store.get(digest), digest)
    return encode_tensors({k: t * 1.01 for k, t in tensors.items()})


@pytest.fixture(scope="session")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    """The governance path end to end: snapshot 2 (layer 0 expert 0 replaced) and dataset 2
    scheduled through Governor + timelock for epoch E, then dataset 2's key revealed in E."""
    from poai.model.dataset import build_dataset
    from poai.model.genesis import VALIDATION_TEXT

    b = make_bench()
    staked = b.binding(B.StakedPOAI, "StakedPOAI")
    gov = b.binding(B.PoAIGovernor, "PoAIGovernor")
    reg = b.binding(B.ModelRegistry, "ModelRegistry")
    dao = b.binding(B.DatasetDAO, "DatasetDAO")
    eb = reg.epochBlocks()
    assert dao.epochBlocks() == eb

    b.send(staked.deposit(), value=1_000 * 10**18)
    b.send(staked.delegate(b.account.address))

    blob = _new_expert_blob()
    payload = hashlib.sha256(blob).digest()
    register_with_payload(b, reg, "layer0.expert0", 0, 0, blob, [1])
    new_expert = reg.expertCount()
    experts = list(reg.snapshotExperts(1))
    experts[0] = new_expert
    trunk = bytes(reg.snapshot(1)[0])
    b.send(reg.registerSnapshot(trunk, experts))
    snapshot_id = reg.snapshotCount()

    work = tmp_path_factory.mktemp("flow")
    text = work / "quiz.txt"
    text.write_bytes(VALIDATION_TEXT.read_bytes()[: 64 * 40])
    dataset_file = work / "new.poaids"
    sha = build_dataset(text, dataset_file, NEW_DATASET_KEY, 64)

    activation = reg.currentEpoch() + 3  # after the ~70 blocks of voting and the timelock
    commitment = Web3.keccak(NEW_DATASET_KEY)
    targets = [reg.address, dao.address]
    calldatas = [
        bytes.fromhex(reg.contract.encode_abi("scheduleSnapshot", [snapshot_id, activation])[2:]),
        bytes.fromhex(dao.contract.encode_abi(
            "scheduleDataset", [bytes.fromhex(sha), 40, commitment, activation])[2:]),
    ]
    desc = f"snapshot {snapshot_id} and a new dataset from epoch {activation}"
    desc_hash = Web3.keccak(text=desc)
    b.send(gov.propose(targets, [0, 0], calldatas, desc))
    pid = gov.hashProposal(targets, [0, 0], calldatas, desc_hash)
    b.mine_to(gov.proposalSnapshot(pid) + 1)
    b.send(gov.castVote(pid, 1))
    b.mine_to(gov.proposalDeadline(pid) + 1)
    b.send(gov.queue(targets, [0, 0], calldatas, desc_hash))
    b.backend.time_travel(gov.proposalEta(pid) + 1)
    b.send(gov.execute(targets, [0, 0], calldatas, desc_hash))
    assert reg.activeSnapshot(activation) == snapshot_id
    assert b.head_number() < activation * eb - 1, "flow too slow for the chosen epoch"

    b.mine_to(activation * eb)  # the reveal is accepted once the activation epoch has begun
    b.send(dao.revealKey(2, NEW_DATASET_KEY))
    reveal_block = b.head_number()
    b.mine_to((activation + 1) * eb)  # past the seed block of E+1

    rows = [list(r) for r in _genesis_expert_hashes()]
    rows[0][0] = payload
    return Flow(
        bench=b, epoch_blocks=eb, activation_epoch=activation, snapshot_id=snapshot_id,
        trunk=trunk, expert_hashes=tuple(tuple(r) for r in rows), new_expert_blob=blob,
        dataset_file=dataset_file, dataset_sha256=bytes.fromhex(sha), dataset_records=40,
        dataset_key=NEW_DATASET_KEY,        reveal_block=reveal_block,
    )


def _genesis_expert_hashes() -> tuple[tuple[bytes, ...], ...]:
    from poai.model.genesis import genesis_manifest_hash, genesis_store
    from poai.model.snapshot import read_manifest

    m = read_manifest(genesis_store(), genesis_manifest_hash())
    return tuple(tuple(bytes.fromhex(h) for h in row) for row in m.experts)
