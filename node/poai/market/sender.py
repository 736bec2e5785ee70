"""Transactions of a node service (market worker, challenger) sent through its own node.

One transaction in flight per account: each is first run against the head's state (a revert
comes back in words before any gas is paid, and the run gives the gas), then signed, handed to
the node's pool and waited for until the head's nonce moves past it. The next action is always
decided from the chain again, so a restart (or a dropped transaction) loses nothing: the
service simply finds the same work still to do.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from eth.vm.message import Message
from eth_account import Account
from eth_typing import Address, Hash32
from eth_utils.address import to_checksum_address

from poai.interfaces import NodeLike
from poai.market.contract import MarketError, decode_revert

log = logging.getLogger(__name__)

PRIORITY_FEE = 10**9  # 1 gwei tip
SIMULATION_GAS = 25_000_000
MINED_TIMEOUT_S = 90.0


class TxSender:
    def __init__(self, node: NodeLike, key: bytes, stop: threading.Event) -> None:
        self.node = node
        self.account = Account.from_key(key)
        self.address = bytes.fromhex(self.account.address[2:])
        self.stop = stop
        self._chain_id = node.config.chain_id

    def balance(self) -> int:
        with self.node.lock:
            return int(self.node.state_at_head().get_balance(Address(self.address)))

    def simulate(self, to: bytes, data: bytes, value: int = 0) -> int:
        """Runs the call against the head's state as this account; returns the gas it used, or
        raises MarketError with the revert in words."""
        with self.node.lock:
            state = self.node.state_at_head()
            message = Message(gas=SIMULATION_GAS, to=Address(to), sender=Address(self.address),
                              value=value, data=data, code=state.get_code(Address(to)))
            context = state.get_transaction_context_class()(gas_price=0,
                                                            origin=Address(self.address))
            snapshot = state.snapshot()
            try:
                if state.get_balance(Address(self.address)) < value:
                    raise MarketError(f"balance below the {value} wei this call sends")
                computation = state.computation_class.apply_message(state, message, context)
            finally:
                state.revert(snapshot)
        if computation.is_error:
            raise MarketError(decode_revert(bytes(computation.output)) if computation.output
                              else f"call fails: {computation.error}")
        return int(SIMULATION_GAS - computation.get_gas_remaining())

    def send(self, to: bytes, data: bytes, *, value: int = 0, gas: int | None = None,
             what: str = "transaction") -> bool:
        """Simulates, sends and waits until mined; returns whether it succeeded. Raises
        MarketError when the call would revert or the node refuses it. ``gas``: at least this
        much gas (else what the simulation used, with a margin)."""
        used = self.simulate(to, data, value)
        gas = max(gas or 0, used + used // 4 + 60_000)  # intrinsic + calldata + margin
        with self.node.lock:
            head = self.node.head()
            nonce = int(self.node.state_at_head().get_nonce(Address(self.address)))
        base_fee = int(getattr(head, "base_fee_per_gas", 0) or 0)
        tx = {"type": 2, "chainId": self._chain_id, "nonce": nonce, "to": to_checksum_address(to),
              "value": value, "data": data, "gas": gas,
              "maxFeePerGas": 2 * base_fee + PRIORITY_FEE, "maxPriorityFeePerGas": PRIORITY_FEE}
        signed = self.account.sign_transaction(tx)
        try:
            tx_hash = self.node.submit_raw_transaction(bytes(signed.raw_transaction))
        except ValueError as exc:  # TxPoolError: nonce, funds, size, ...
            raise MarketError(f"{what}: the node refused it: {exc}") from exc
        log.debug("%s sent: 0x%s (nonce %d)", what, tx_hash.hex(), nonce)
        return self._wait(tx_hash, nonce, what)

    def _wait(self, tx_hash: bytes, nonce: int, what: str) -> bool:
        deadline = time.monotonic() + MINED_TIMEOUT_S
        while not self.stop.is_set():
            with self.node.lock:
                mined = self.node.state_at_head().get_nonce(Address(self.address)) > nonce
                receipt: Any = None
                if mined:
                    try:
                        receipt = self.node.chain.get_transaction_receipt(Hash32(tx_hash))
                    except Exception:  # noqa: BLE001 - another tx of ours took the nonce
                        receipt = None
            if mined:
                ok = receipt is not None and bytes(receipt.state_root) == b"\x01"
                if not ok:
                    log.warning("%s 0x%s did not succeed", what, tx_hash.hex())
                return ok
            if time.monotonic() > deadline:
                raise MarketError(f"{what} 0x{tx_hash.hex()} not mined in {MINED_TIMEOUT_S:.0f} s")
            self.stop.wait(0.2)
        return False
