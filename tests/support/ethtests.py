"""The official ethereum/tests fixtures in tests/conformance/data, and how one case runs.

Cases: every Cancun post of every GeneralStateTests file (a post is one (data, gas, value)
choice of the file's transaction), and every BlockchainTests test.  `make test` runs a bounded,
stratified selection (every Nth case of each folder, plus the cases named in CORRECTED);
POAI_CONFORMANCE=all runs them all.
"""

from __future__ import annotations

import functools
import json
import lzma
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth.abc import ComputationAPI, ReceiptAPI, SignedTransactionAPI, StateAPI
from eth.chains.base import Chain
from eth.constants import BLANK_ROOT_HASH, EMPTY_UNCLE_HASH, ZERO_HASH32
from eth.db.atomic import AtomicDB
from eth.exceptions import VMError
from eth.tools._utils.normalization import normalize_account_state, normalize_blockchain_fixtures
from eth.tools.fixtures.helpers import (
    genesis_params_from_fixture,
    setup_state,
    verify_state,
)
from eth.vm.chain_context import ChainContext
from eth.vm.forks.cancun.blocks import CancunBlockHeader
from eth.vm.forks.cancun.constants import MAX_BLOB_GAS_PER_BLOCK
from eth.vm.forks.cancun.state import get_total_blob_gas
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.blocks import PragueBlockHeader
from eth_utils import decode_hex, keccak, to_canonical_address
from eth_utils.exceptions import ValidationError
from poai.chain.transactions import PoaiTransactionBuilder
from poai.txpool.pool import recover_sender

DATA = Path(__file__).resolve().parents[1] / "conformance" / "data"
FORK = "Cancun"  # every fixture post in the data was filled for Cancun

# Official cases py-evm 0.12.1b1 gets wrong and PoAI corrects (poai.chain.corrections).
CORRECTED = {
    "GeneralStateTests/stSStoreTest/InitCollisionParis.json": "EIP-7610 collision with storage",
    "GeneralStateTests/stCreate2/create2collisionStorageParis.json":
        "EIP-7610 collision with storage",
    "GeneralStateTests/stExtCodeHash/dynamicAccountOverwriteEmpty_Paris.json":
        "EIP-7610 collision with storage",
    "GeneralStateTests/stCreate2/RevertInCreateInInitCreate2Paris.json":
        "EIP-7610 collision with storage",
    "GeneralStateTests/stRevertTest/RevertInCreateInInit_Paris.json":
        "EIP-7610 collision with storage",
    "GeneralStateTests/stEIP1559/tipTooHigh.json": "priority fee above max fee",
    "GeneralStateTests/stEIP1559/transactionIntinsicBug_Paris.json":
        "balance must cover gas * max fee + value",
    "GeneralStateTests/Cancun/stEIP4844-blobtransactions/createBlobhashTx.json":
        "blob transaction creating a contract",
    "GeneralStateTests/Shanghai/stEIP3860-limitmeterinitcode/creationTxInitCodeSizeLimit.json":
        "init code over the EIP-3860 limit refused as an invalid transaction",
    **{f"GeneralStateTests/stEIP3607/transactionCollidingWithNonEmptyAccount_{name}.json":
       "EIP-3607 transaction from an account with code" for name in (
           "calls", "callsItself", "init_Paris", "send_Paris")},
}

# Corrected cases whose BlockchainTests form is not in the committed selection (found by the
# full run after the selection was made; its state form is checked like the others).
NO_BLOCK_FORM = {"GeneralStateTests/stCreate2/RevertInCreateInInitCreate2Paris.json",
                 "GeneralStateTests/stRevertTest/RevertInCreateInInit_Paris.json"}

# Cases that take seconds each (deep recursion, 50,000 calls): POAI_CONFORMANCE=all only.
SLOW = {"GeneralStateTests/" + p for p in (
    "stStaticCall/static_LoopCallsDepthThenRevert2.json",
    "stStaticCall/static_LoopCallsDepthThenRevert3.json", "stStaticCall/static_Call50000.json",
    "stStaticCall/static_LoopCallsThenRevert.json", "stCreate2/Create2OnDepth1023.json",
    "stCreate2/Create2OnDepth1024.json", "stCreate2/Create2Recursive.json",
    "stRevertTest/LoopCallsDepthThenRevert2.json", "stRevertTest/LoopCallsDepthThenRevert3.json",
    "stRevertTest/LoopCallsThenRevert.json",
    "Pyspecs/cancun/eip1153_tstore/run_until_out_of_gas.json")}

# One case in this many of each folder under `make test` (all with POAI_CONFORMANCE=all).
STATE_STRIDE = 8
BLOCK_STRIDE = 5


def run_all() -> bool:
    return os.environ.get("POAI_CONFORMANCE", "").lower() == "all"


@functools.cache
def load(kind: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(lzma.decompress((DATA / f"{kind}.json.xz").read_bytes()))
    return data


@dataclass(frozen=True)
class StateCase:
    path: str
    name: str
    index: int

    @property
    def id(self) -> str:
        return f"{self.path.removeprefix('GeneralStateTests/')}::{self.name}[{self.index}]"

    @property
    def fixture(self) -> dict[str, Any]:
        fx: dict[str, Any] = load("GeneralStateTests")[self.path][self.name]
        return fx

    @property
    def post(self) -> dict[str, Any]:
        post: dict[str, Any] = self.fixture["post"][FORK][self.index]
        return post


def _stride_select(items: list[Any], key: Any, stride: int, keep: Any) -> list[Any]:
    """Every `stride`-th item of each group (by `key`), plus the ones `keep` wants."""
    seen: dict[str, int] = {}
    out = []
    for item in items:
        n = seen.get(key(item), 0)
        seen[key(item)] = n + 1
        if n % stride == 0 or keep(item):
            out.append(item)
    return out


def state_cases(everything: bool | None = None) -> list[StateCase]:
    cases = [StateCase(path, name, i)
             for path, cases_of_file in sorted(load("GeneralStateTests").items())
             for name, fx in sorted(cases_of_file.items())
             for i in range(len(fx["post"].get(FORK, [])))]
    if everything if everything is not None else run_all():
        return cases
    cases = [c for c in cases if c.path not in SLOW]
    return _stride_select(cases, lambda c: c.path.rsplit("/", 1)[0], STATE_STRIDE,
                          lambda c: c.path in CORRECTED)


def block_tests(everything: bool | None = None) -> list[tuple[str, str]]:
    tests = [(path, name) for path, tests_of_file in sorted(load("BlockchainTests").items())
             for name in sorted(tests_of_file)]
    if everything if everything is not None else run_all():
        return tests
    return _stride_select(tests, lambda t: t[0].rsplit("/", 1)[0], BLOCK_STRIDE,
                          lambda t: t[0].removeprefix("BlockchainTests/") in CORRECTED)


def _int(value: str) -> int:
    return int(value, 16)


def _header_for(vm_class: Any, env: dict[str, Any]) -> Any:
    prague = issubclass(vm_class, PragueVM)
    header_class = PragueBlockHeader if prague else CancunBlockHeader
    fields = dict(
        parent_hash=ZERO_HASH32, uncles_hash=EMPTY_UNCLE_HASH,
        coinbase=to_canonical_address(env["currentCoinbase"]), state_root=BLANK_ROOT_HASH,
        transaction_root=BLANK_ROOT_HASH, receipt_root=BLANK_ROOT_HASH, bloom=0,
        difficulty=0, block_number=_int(env["currentNumber"]),
        gas_limit=_int(env["currentGasLimit"]), gas_used=0,
        timestamp=_int(env["currentTimestamp"]), extra_data=b"",
        mix_hash=decode_hex(env.get("currentRandom", "0x" + "00" * 32)), nonce=b"\x00" * 8,
        base_fee_per_gas=_int(env.get("currentBaseFee", "0x0a")),
        withdrawals_root=BLANK_ROOT_HASH, blob_gas_used=0,
        excess_blob_gas=_int(env.get("currentExcessBlobGas", "0x0")),
        parent_beacon_block_root=ZERO_HASH32)
    if prague:
        fields["requests_hash"] = ZERO_HASH32  # state tests make no requests
    return header_class(**fields)


@dataclass
class StateOutcome:
    """What a state test checks: the post-state root, the logs' hash, and for the differential
    run the receipt's bytes and the error (if the transaction was refused)."""

    state_root: bytes
    logs_hash: bytes
    receipt: bytes
    refused: str | None
    vm_error: bool = False  # refused by an exception py-evm's block import does not expect


def logs_hash(computation: ComputationAPI | None) -> bytes:
    entries = [] if computation is None else computation.get_log_entries()
    return keccak(rlp.encode([[address, [t.to_bytes(32, "big") for t in topics], data]
                              for address, topics, data in entries]))


def _poai_senders(vm_class: Any) -> bool:
    return vm_class.get_transaction_builder() is PoaiTransactionBuilder


def _apply_block(chain: Any, vm_class: Any, block_rlp: bytes) -> bytes:
    """Decode and import one block as PoAI's node does (senders recovered by PoAI's signing
    code first); the imported block's RLP."""
    block_class = vm_class.get_block_class()
    block = rlp.decode(block_rlp, sedes=block_class)
    if _poai_senders(vm_class):
        for tx in block.transactions:
            try:
                tx.__dict__["sender"] = recover_sender(tx)
            except Exception:  # noqa: BLE001, S112  # py-evm's own check refuses it
                continue
    imported = chain.import_block(block).imported_block
    return bytes(rlp.encode(imported, sedes=block_class))


def run_state_case(vm_class: Any, case: StateCase) -> StateOutcome:
    """The fixture's pre-state, its transaction (the filler's signed bytes) applied to a state
    of `vm_class` in the fixture's environment; BLOCKHASH(n) is keccak(str(n)) as in the
    reference state-test runners."""
    fx, post = case.fixture, case.post
    header = _header_for(vm_class, fx["env"])
    number = header.block_number
    previous = [keccak(str(n).encode()) for n in range(number - 1, max(number - 257, -1), -1)]
    state: StateAPI = vm_class.build_state(AtomicDB(), header, ChainContext(1), previous)
    setup_state(normalize_account_state(fx["pre"]), state)
    refused: str | None = None
    poai_senders = _poai_senders(vm_class)
    computation: ComputationAPI | None = None
    receipt: ReceiptAPI | None = None
    snapshot = state.snapshot()
    try:
        tx: SignedTransactionAPI = vm_class.get_transaction_builder().decode(
            decode_hex(post["txbytes"]))
        tx.validate()
        if poai_senders:
            tx.__dict__["sender"] = recover_sender(tx)  # as PoAI's node and txpool do
        if tx.gas > header.gas_limit:
            raise ValidationError("transaction gas limit above the block's")
        if get_total_blob_gas(tx) > MAX_BLOB_GAS_PER_BLOCK:
            raise ValidationError("more blob gas than a block allows")
        computation = state.apply_transaction(tx)
        receipt = vm_class.make_receipt(header, tx, computation, state)
    except (ValidationError, rlp.DecodingError, rlp.DeserializationError, ValueError,
            VMError) as exc:  # VMError: py-evm's EIP-3860 refusal (poai.chain.corrections)
        # py-evm refuses some transactions after buying their gas: a refused transaction
        # leaves no trace, as in a block (which it would invalidate).
        state.revert(snapshot)
        refused = f"{type(exc).__name__}: {exc}"
        computation = None
    state.persist()
    return StateOutcome(state.state_root, logs_hash(computation),
                        b"" if receipt is None else receipt.encode(), refused,
                        refused is not None and refused.startswith("OutOfGas"))


def check_against_fixture(case: StateCase, outcome: StateOutcome) -> None:
    post = case.post
    expected_refusal = post.get("expectException")
    assert (outcome.refused is not None) == (expected_refusal is not None), (
        f"{case.id}: expected {'refusal ' + expected_refusal if expected_refusal else 'execution'}"
        f", got {outcome.refused or 'execution'}")
    assert outcome.state_root == decode_hex(post["hash"]), (
        f"{case.id}: state root {outcome.state_root.hex()} != fixture {post['hash']}")
    assert outcome.logs_hash == decode_hex(post["logs"]), f"{case.id}: logs hash differs"


def block_test(path: str, name: str) -> dict[str, Any]:
    fx: dict[str, Any] = load("BlockchainTests")[path][name]
    return fx


def run_block_test(vm_class: Any, fixture: dict[str, Any]) -> None:
    """Import the fixture's blocks into a chain of `vm_class` from the fixture's genesis: each
    valid block must import unchanged (state, transaction and receipt tries, bloom, gas), each
    block marked `expectException` must be refused, and the head and post-state must be the
    fixture's.  Seal checks are the fixture's own (Cancun: proof of stake, no reward)."""
    assert fixture["network"] == FORK, f"no VM for network {fixture['network']}"
    blocks = [{k: v for k, v in b.items() if k != "transactions"} for b in fixture["blocks"]]
    fx = normalize_blockchain_fixtures({**fixture, "blocks": blocks})
    chain_class = Chain.configure("ConformanceChain", vm_configuration=((0, vm_class),),
                                  chain_id=1)
    chain = chain_class.from_genesis(AtomicDB(), genesis_params_from_fixture(fx), fx["pre"])
    genesis = chain.get_canonical_head()
    assert genesis.hash == fx["genesisBlockHeader"]["hash"], "genesis header differs"
    for number, block_fx in enumerate(fx["blocks"], start=1):
        if "expectException" in block_fx:
            with pytest.raises((ValidationError, rlp.DecodingError, rlp.DeserializationError,
                                ValueError, KeyError, TypeError, IndexError),
                               ) as refused:
                if "rlp_error" in block_fx:
                    raise block_fx["rlp_error"]
                _apply_block(chain, vm_class, block_fx["rlp"])
            assert refused.value is not None, f"block {number} ({block_fx['expectException']})"
            continue
        imported_rlp = _apply_block(chain, vm_class, block_fx["rlp"])
        assert imported_rlp == block_fx["rlp"], f"block {number} imported differently"
    assert chain.get_canonical_head().hash == fx["lastblockhash"], "head differs"
    if fx["postState"]:
        verify_state(fx["postState"], chain.get_vm().state)
