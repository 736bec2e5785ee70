"""Hand-assembled contracts whose every opcode and gas cost is known, for the tracer tests
(tests/chain/test_tracing.py, tests/rpc/test_debug.py), and a DevNode chain that runs them."""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address
from poai.compat.pyevm import generate_contract_address

from support.devnode import ACCOUNTS, DevNode, sign

# A: SSTORE(1, 0x2a); LOG0(0, 0); MSTORE(0, SLOAD(1)); RETURN(0, 32)
A_RUNTIME = bytes.fromhex("602a600155" "60006000a0" "600154600052" "60206000f3")
A_STEPS = [  # (pc, op, gasCost) of a call into A whose slot 1 holds 0
    (0, "PUSH1", 3), (2, "PUSH1", 3), (4, "SSTORE", 22100), (5, "PUSH1", 3), (7, "PUSH1", 3),
    (9, "LOG0", 375), (10, "PUSH1", 3), (12, "SLOAD", 100), (13, "PUSH1", 3),
    (15, "MSTORE", 6), (16, "PUSH1", 3), (18, "PUSH1", 3), (20, "RETURN", 0),
]
A_GAS = sum(c for _, _, c in A_STEPS)
A_GAS_AGAIN = A_GAS - 22100 + 2200  # slot 1 already 0x2a: a cold, unchanged SSTORE


def b_runtime(a: bytes) -> bytes:
    """B: CALL(A) keeping 32 bytes of its output, then revert with Panic(1) (assert)."""
    return bytes.fromhex("6020600060006000600073") + a + bytes.fromhex(
        "5af150" "7f4e487b71" + "00" * 28 + "600052" "6001600452" "60246000fd")


def d_runtime(a: bytes) -> bytes:
    """D: STATICCALL(10000 gas, A) (A's SSTORE: write protection), DELEGATECALL(A) (A's code on
    D's storage), CREATE2(salt 1, empty init code), SELFDESTRUCT(0x22..22)."""
    return (bytes.fromhex("600060006000600073") + a + bytes.fromhex("612710fa50")
            + bytes.fromhex("600060006000600073") + a + bytes.fromhex("5af450")
            + bytes.fromhex("6001600060006000f550") + b"\x73" + b"\x22" * 20 + b"\xff")


def deploy_code(runtime: bytes) -> bytes:
    n = len(runtime)
    assert n < 256
    return bytes([0x60, n, 0x60, 12, 0x60, 0, 0x39, 0x60, n, 0x60, 0, 0xF3]) + runtime


def raw_tx(sender: int, nonce: int, to: bytes | None, data: bytes = b"", gas: int = 200_000
         ) -> bytes:
    fields: dict[str, Any] = {"chainId": 31337, "type": 2, "gas": gas, "nonce": nonce,
                              "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9,
                              "value": 0, "data": data}
    if to is not None:
        fields["to"] = to_checksum_address(to)
    return bytes(ACCOUNTS[sender].sign_transaction(fields).raw_transaction)


def traced_chain() -> dict[str, Any]:
    """Block 1 deploys A and B; block 2 calls A, B, A again (so the third call sees the
    first's write: the replay must run the block's earlier transactions) and makes a transfer;
    block 3 deploys D and calls it."""
    node = DevNode()
    sender = bytes.fromhex(ACCOUNTS[0].address[2:])
    a = generate_contract_address(sender, 0)
    b = generate_contract_address(sender, 1)
    for raw in (raw_tx(0, 0, None, deploy_code(A_RUNTIME)),
                raw_tx(0, 1, None, deploy_code(b_runtime(a)))):
        node.submit_raw_transaction(raw)
    node.mine_block()
    for raw in (raw_tx(0, 2, a), raw_tx(0, 3, b), raw_tx(0, 4, a), sign(1, nonce=0)):
        node.submit_raw_transaction(raw)
    block = node.mine_block()
    assert len(block.transactions) == 4
    d = generate_contract_address(sender, 5)  # block 3: deploy D, call it
    for raw in (raw_tx(0, 5, None, deploy_code(d_runtime(a))), raw_tx(0, 6, d, gas=300_000)):
        node.submit_raw_transaction(raw)
    block3 = node.mine_block()
    assert len(block3.transactions) == 2
    return {"node": node, "block": block, "a": a, "b": b, "d": d, "sender": sender,
            "block3": block3}
