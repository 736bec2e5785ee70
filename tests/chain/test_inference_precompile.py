"""INFERENCE_CHECK through a real chain: the devnet genesis (ModelRegistry snapshot 1 = the
genesis model), transactions and message calls to 0x…0f00, a mined block re-executed by a second
chain (same verdicts, same state root), and the failure paths (gas consumed, reason given)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from eth.db.atomic import AtomicDB
from eth.vm.message import Message
from eth_account import Account
from eth_typing import Address
from eth_utils import to_checksum_address
from poai.chain.chain import chain_class_for, create_genesis
from poai.chain.config import load_genesis_config
from poai.chain.devaccounts import dev_accounts
from poai.chain.inference import InferenceCheckFailed, check_job_locally, job_snapshot
from poai.consensus import inference_check as ic
from poai.consensus.inference_check import Decoding, Fault, JobClaim
from support.nodeproc import fast_genesis
from support.poai_tiny import mine_on

GOLDEN = Path(__file__).parents[1] / "consensus" / "golden" / "inference_check.json"
GAS = 2_000_000


def _golden(name: str, n: int = 0) -> JobClaim:
    cases = [c for c in json.loads(GOLDEN.read_text()) if c["name"] == name]
    j = cases[n]["claim"]
    return JobClaim(j["snapshot"], bytes.fromhex(j["prompt"]), Decoding(*j["decoding"]),
                    tuple(j["output"]), tuple(j["expertIds"]), tuple(j["counts"]))


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Any:
    cfg = load_genesis_config(fast_genesis(tmp_path_factory.mktemp("ic") / "genesis.json"))
    return create_genesis(AtomicDB(), cfg, chain_class_for(cfg))


def _call(chain: Any, data: bytes, gas: int = GAS) -> Any:
    state = chain.get_vm(chain.get_canonical_head()).state
    msg = Message(gas=gas, to=Address(ic.INFERENCE_CHECK_ADDRESS), sender=Address(b"\x01" * 20),
                  value=0, data=data, code=b"", code_address=Address(ic.INFERENCE_CHECK_ADDRESS),
                  is_static=True)
    context = state.get_transaction_context_class()(gas_price=0, origin=Address(b"\x01" * 20))
    return state.computation_class.apply_message(state, msg, context)


def test_verdicts_and_gas(chain: Any) -> None:
    honest = _golden("honest", 3)  # seeded sampling
    c = _call(chain, ic.encode_call(honest))
    assert not c.is_error
    assert ic.decode_verdict(c.output) == ic.Verdict(Fault.NONE, -1, honest.expert_ids,
                                                     honest.counts)
    assert c.get_gas_used() == ic.gas_for(honest)
    for name, fault in (("wrong_token", Fault.WRONG_TOKEN), ("extended", Fault.WRONG_END),
                        ("inflated_count", Fault.WRONG_COUNT)):
        v = ic.decode_verdict(_call(chain, ic.encode_call(_golden(name, 3))).output)
        assert v.fault == fault, name
    # The challenger's local check gives the precompile's verdict.
    assert check_job_locally(chain, honest).holds
    assert check_job_locally(chain, _golden("wrong_token")).fault == Fault.WRONG_TOKEN
    snap = job_snapshot(chain, 1)
    assert snap.expert_ids_by_slot == tuple(tuple(1 + 8 * layer + e for e in range(8))
                                            for layer in range(4))


def test_tokens_outside_the_vocabulary(chain: Any) -> None:
    honest = _golden("honest")
    claim = replace(honest, output=(honest.output[0], 0xFFFF))
    v = ic.decode_verdict(_call(chain, ic.encode_call(claim)).output)
    assert (v.fault, v.index) == (Fault.WRONG_TOKEN, 1)


@pytest.mark.parametrize("data, reason", [
    (b"\x12\x34", "not abi.encode of a job"),
    (ic.encode_call(_golden("honest")) + b"\x00", "not in canonical ABI encoding"),
    (ic.encode_call(replace(_golden("honest"), snapshot_id=99)), "unknown snapshot 99"),
    (ic.encode_call(replace(_golden("honest"), prompt=b"p" * 257)), "prompt is 257 bytes"),
    (ic.encode_call(replace(_golden("honest"), output=(65,) * 256)), "output is 256 tokens"),
])
def test_bad_calls_fail_with_a_reason_and_burn_the_gas(chain: Any, data: bytes,
                                                       reason: str) -> None:
    c = _call(chain, data)
    assert c.is_error and isinstance(c.error, InferenceCheckFailed)
    assert reason in str(c.error) and "\n" not in str(c.error)
    assert c.get_gas_used() == GAS and c.output == b""


def test_too_little_gas_is_out_of_gas(chain: Any) -> None:
    claim = _golden("honest")
    c = _call(chain, ic.encode_call(claim), gas=ic.gas_for(claim) - 1)
    assert c.is_error and type(c.error).__name__ == "OutOfGas"


def test_mined_block_reexecutes_to_the_same_state(chain: Any, tmp_path: Path) -> None:
    key = dev_accounts()[0].private_key
    acct = Account.from_key(key)
    head = chain.get_canonical_head()
    nonce = chain.get_vm(head).state.get_nonce(Address(bytes.fromhex(acct.address[2:])))
    calls = [ic.encode_call(_golden("honest", 1)), ic.encode_call(_golden("wrong_token", 4)),
             b"\x00" * 5]
    builder = chain.get_vm().get_transaction_builder()
    txs = [builder.decode(bytes(acct.sign_transaction({
        "chainId": chain.chain_id, "nonce": nonce + i,
        "to": to_checksum_address(ic.INFERENCE_CHECK_ADDRESS),
        "value": 0, "gas": GAS, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9,
        "type": 2, "data": data}).raw_transaction)) for i, data in enumerate(calls)]
    block = mine_on(chain, head, txs)
    assert len(block.transactions) == 3
    receipts = block.get_receipts(chain.chaindb)
    assert [r.state_root for r in receipts] == [b"\x01", b"\x01", b""]
    assert receipts[2].gas_used - receipts[1].gas_used == GAS  # the bad call burnt its gas
    # A second node re-executes the block: same verdicts, same state root.
    other = create_genesis(AtomicDB(), chain.config, chain_class_for(chain.config))
    imported = other.execute_and_store(block)
    assert imported.header.state_root == block.header.state_root
