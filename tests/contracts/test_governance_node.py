"""The governance flow against the real node over JSON-RPC (web3): stake, delegate, propose
scheduleSnapshot, vote, queue, wait the timelock, execute, read activeSnapshot(epoch).

Skipped only while the node package (poai.node) does not exist. It talks to the node at
POAI_RPC_URL (default http://127.0.0.1:8545), which must be running with the genesis contracts
from migrations/genesis.py, the dev accounts funded, and mining.
"""

import os
import time

import pytest

pytest.importorskip("poai.node", reason="node not built yet (poai.node missing)")

import genesis  # noqa: E402
import poai_bindings as B  # noqa: E402
from eth_account import Account  # noqa: E402
from web3 import Web3  # noqa: E402

DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def _send(w3: Web3, acct, fn, value: int = 0):  # type: ignore[no-untyped-def]
    tx = fn.build_transaction(
        {"from": acct.address, "value": value, "nonce": w3.eth.get_transaction_count(acct.address)}
    )
    h = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    r = w3.eth.wait_for_transaction_receipt(h, timeout=300)
    assert r["status"] == 1
    return r


def _wait_block(w3: Web3, n: int, timeout: float = 900) -> None:
    end = time.monotonic() + timeout
    while w3.eth.block_number < n:
        assert time.monotonic() < end, f"node did not reach block {n}"
        time.sleep(0.5)


@pytest.mark.integration
@pytest.mark.slow
def test_governance_flow_on_node() -> None:
    w3 = Web3(Web3.HTTPProvider(os.environ.get("POAI_RPC_URL", "http://127.0.0.1:8545")))
    if not w3.is_connected():
        # TODO(lead/chain): start a devnet node in a fixture instead of relying on one running.
        pytest.skip("no PoAI node listening at POAI_RPC_URL")
    _, contracts = genesis.genesis_state(None)
    acct = Account.from_key(DEV_KEY)
    staked = B.StakedPOAI(w3, contracts["StakedPOAI"])
    gov = B.PoAIGovernor(w3, contracts["PoAIGovernor"])
    reg = B.ModelRegistry(w3, contracts["ModelRegistry"])
    _send(w3, acct, staked.deposit(), value=10**21)
    _send(w3, acct, staked.delegate(acct.address))
    experts = reg.snapshotExperts(1)
    _send(w3, acct, reg.registerSnapshot(b"\x77" * 32, experts))
    snap = reg.snapshotCount()
    epoch = reg.currentEpoch() + 4
    call = reg.contract.encode_abi("scheduleSnapshot", [snap, epoch])
    desc = f"schedule snapshot {snap} at epoch {epoch}"
    r = _send(w3, acct, gov.propose([reg.address], [0], [bytes.fromhex(call[2:])], desc))
    pid = gov.hashProposal([reg.address], [0], [bytes.fromhex(call[2:])], Web3.keccak(text=desc))
    _wait_block(w3, gov.proposalSnapshot(pid) + 1)
    _send(w3, acct, gov.castVote(pid, 1))
    _wait_block(w3, gov.proposalDeadline(pid) + 1)
    _send(
        w3, acct, gov.queue([reg.address], [0], [bytes.fromhex(call[2:])], Web3.keccak(text=desc))
    )
    eta = gov.proposalEta(pid)
    while w3.eth.get_block("latest")["timestamp"] < eta:
        time.sleep(1)
    _send(
        w3, acct, gov.execute([reg.address], [0], [bytes.fromhex(call[2:])], Web3.keccak(text=desc))
    )
    assert reg.activeSnapshot(epoch) == snap
    assert r["status"] == 1
