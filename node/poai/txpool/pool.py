"""Transaction pool: per-sender nonce order, fee-bump replacement, limits and eviction.

Rules and messages follow geth's legacypool so wallets and tools show familiar errors.
A transaction is *pending* when its nonce continues the sender's on-chain nonce without a gap,
*queued* otherwise.

Fees, as geth and anvil (docs/CONTRACTS.md, "Transaction pool rules"): a tip below the pool's
minimum (`PoolLimits.min_tip`, geth's `--txpool.pricelimit`, 1 wei) is refused with geth's
"transaction gas price below minimum", and a fee cap below the next block's base fee is refused
as anvil does, with geth's "max fee per gas less than block base fee": the pool never holds a
transaction that cannot go into the next block when it arrives, so the pending nonce
(`eth_getTransactionCount(.., "pending")`) never moves past one. A transaction admitted earlier
whose fee cap the base fee has since risen above stays pending (as in geth) but is not selected
for a block until the base fee falls.

Admission is on the hot path of every eth_sendRawTransaction and needs only the pool's own
lock (the node's RPC runs it without ``Node.lock``, so it never waits for block building):
decoding and signature checks (three ECDSA operations in py-evm) are memoised by raw bytes and
by transaction hash, so a caller can do them ahead (`verify_raw`), and the head's state is
built once per head (`on_new_head`) instead of once per transaction.
"""

from __future__ import annotations

import heapq
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import rlp
from coincurve import PublicKey
from eth.abc import SignedTransactionAPI, StateAPI, TransactionBuilderAPI
from eth.exceptions import UnrecognizedTransactionType
from eth_hash.auto import keccak
from eth_typing import Address
from eth_utils.address import to_checksum_address
from eth_utils.exceptions import ValidationError
from lru import LRU

from poai.chain.corrections import creation_rule_violation, max_cost
from poai.chain.signing import signing_message
from poai.compat.pyevm import cache_sender, cache_sender_if_absent

logger = logging.getLogger(__name__)

TX_MAX_SIZE = 128 * 1024  # geth txMaxSize: 4 slots of 32 KiB
PRICE_BUMP_PERCENT = 10  # geth's default --txpool.pricebump


class TxRejection(Enum):
    """Why the pool refused a transaction, as peer scoring sees it."""

    MALFORMED = "malformed"  # not a transaction at all: only a broken or hostile peer sends it
    BAD_SIGNATURE = "bad signature"
    KNOWN = "already known"
    POLICY = "policy"  # a valid transaction not admitted now (nonce, price, limits, type)


class TxPoolError(ValueError):
    """A rejected transaction; ``code`` is the JSON-RPC error code (geth uses -32000)."""

    def __init__(self, message: str, code: int = -32000,
                 reason: TxRejection = TxRejection.POLICY) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class PoolLimits:
    global_slots: int = 5120  # geth GlobalSlots + GlobalQueue, counted together here
    account_slots: int = 256  # per sender, pending and queued together
    max_tx_size: int = TX_MAX_SIZE
    min_tip: int = 1  # wei per gas; geth's --txpool.pricelimit default


DECODED_CACHE_SIZE = 1024  # raw transactions decoded recently (a send decodes twice)
DECODED_CACHE_MAX_RAW = 32 * 1024  # bigger ones are rare: decode them again
SENDER_CACHE_SIZE = 16384  # transaction hash -> sender whose signature was checked

MAX_HEAD_RACES = 16  # head changes seen during one admission before giving up

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_decoded: Any = LRU(DECODED_CACHE_SIZE)  # (builder, raw) -> SignedTransactionAPI
_senders: Any = LRU(SENDER_CACHE_SIZE)  # tx hash -> sender (signature checked)


def decode_transaction(builder: type[TransactionBuilderAPI], raw: bytes) -> SignedTransactionAPI:
    """Decode a raw (legacy or typed) transaction; bad RLP gets one clear error.

    Recent decodings are reused (the same object, so its recovered sender comes along)."""
    if not raw:
        raise TxPoolError("typed transaction too short", reason=TxRejection.MALFORMED)
    key = (builder, bytes(raw))
    tx = _decoded.get(key)
    if tx is not None:
        return tx  # type: ignore[no-any-return]
    try:
        tx = builder.decode(raw)
    except UnrecognizedTransactionType as exc:
        raise TxPoolError(f"transaction type not supported: 0x{raw[0]:02x}") from exc
    except (rlp.DecodingError, rlp.DeserializationError, ValidationError, ValueError,
            TypeError, IndexError) as exc:
        raise TxPoolError(f"rlp: invalid transaction encoding ({exc.__class__.__name__})",
                          reason=TxRejection.MALFORMED) from exc
    if len(raw) <= DECODED_CACHE_MAX_RAW:
        _decoded[key] = tx
    return tx


def recover_sender(tx: SignedTransactionAPI) -> bytes:
    """py-evm's `extract_transaction_sender`, called straight into libsecp256k1 (coincurve,
    eth-keys' backend here too) without eth-keys' objects (a third less time per transaction),
    over the signing message encoded directly (poai.chain.signing).
    The caller has checked r and s (EIP-2); coincurve rejects what recovers no key."""
    y_parity = tx.y_parity
    if y_parity not in (0, 1):
        raise ValueError(f"y parity {y_parity} is not 0 or 1")
    signature = tx.r.to_bytes(32, "big") + tx.s.to_bytes(32, "big") + bytes((y_parity,))
    message_hash = keccak(signing_message(tx))
    public = PublicKey.from_signature_and_message(signature, message_hash, hasher=None)
    return keccak(public.format(compressed=False)[1:])[12:]


def verify_sender(tx: SignedTransactionAPI, tx_hash: bytes | None = None) -> bytes:
    """The sender of ``tx`` after checking its signature; TxPoolError for a bad one.

    Memoised by transaction hash, which covers the signature: the same hash is the same
    signature over the same fields."""
    if tx_hash is None:
        tx_hash = tx.hash  # py-evm encodes the transaction again for every `.hash`
    sender = _senders.get(tx_hash)
    if sender is not None:
        cache_sender_if_absent(tx, sender)  # the hash covers the signature
        return sender  # type: ignore[no-any-return]
    try:
        # py-evm's check_signature_validity recovers the key a second time and verifies the
        # signature against it, which only adds libsecp256k1's low-s rule (EIP-2): check
        # the values directly and recover once.
        if not (0 < tx.r < SECP256K1_N and 0 < tx.s <= SECP256K1_N // 2):
            raise ValueError("signature values out of range (EIP-2)")
        sender = recover_sender(tx)
    except Exception as exc:  # ValidationError, BadSignature, coincurve's own types
        raise TxPoolError("invalid sender: invalid signature",
                          reason=TxRejection.BAD_SIGNATURE) from exc
    # So that building or importing the block does not recover it again.
    cache_sender(tx, sender)
    _senders[tx_hash] = sender
    return bytes(sender)


def assume_sender(tx_hash: bytes, sender: bytes) -> None:
    """Take `sender` as the sender of the transaction `tx_hash`, whatever key signed it: a dev
    node's impersonated account (anvil_impersonateAccount; poai.chain.devchain).  Dev only."""
    _senders[tx_hash] = sender


def verify_raw(builder: type[TransactionBuilderAPI], raw: bytes) -> None:
    """Decode ``raw`` and check its signature now, so a later `decode_transaction` and
    `TxPool.add` of the same bytes skip that work; errors are left for that later call."""
    try:
        verify_sender(decode_transaction(builder, raw))
    except TxPoolError:
        pass


def sender_of(tx: SignedTransactionAPI) -> Address:
    """``tx.sender``, without the ECDSA recovery when the pool has checked this transaction."""
    sender = _senders.get(tx.hash)
    return Address(bytes(sender) if sender is not None else bytes(tx.sender))


def _tip(tx: SignedTransactionAPI, base_fee: int) -> int:
    """Effective miner tip per gas at ``base_fee`` (negative when the fee cap is below it)."""
    return min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base_fee)


def _addr(sender: bytes) -> str:
    return to_checksum_address(sender)


class TxPool:
    """Thread-safe transaction pool. ``state_at_head`` returns the state of the canonical head."""

    def __init__(
        self,
        chain_id: int,
        state_at_head: Callable[[], StateAPI],
        *,
        limits: PoolLimits | None = None,
        block_gas_limit: Callable[[], int] | None = None,
        next_base_fee: Callable[[], int] | None = None,
    ) -> None:
        """``next_base_fee``: the base fee of the block built on the current head (None: no
        base-fee rule, for pools without a chain behind them)."""
        self.chain_id = chain_id
        self._state_at_head = state_at_head
        self._limits = limits or PoolLimits()
        self._block_gas_limit = block_gas_limit
        self._next_base_fee = next_base_fee
        self._by_sender: dict[bytes, dict[int, SignedTransactionAPI]] = {}
        self._by_hash: dict[bytes, tuple[bytes, SignedTransactionAPI]] = {}
        self._lock = threading.RLock()
        # The head's state, read-only here, kept until the next `on_new_head`; `_head_epoch`
        # tells a state fetched before a head change from one fetched after it.
        self._head_state: StateAPI | None = None
        self._head_base_fee: int | None = None
        self._head_epoch = 0

    def _state(self) -> StateAPI:
        # Called without self._lock: `state_at_head` takes Node.lock, and Node calls
        # on_new_head (which takes self._lock) while holding Node.lock.
        state = self._head_state
        if state is not None:
            return state
        epoch = self._head_epoch
        state = self._state_at_head()
        with self._lock:
            if self._head_epoch == epoch and self._head_state is None:
                self._head_state = state
        return state

    def _base_fee(self) -> int | None:
        # As _state: without self._lock (the callable may take Node.lock), once per head.
        if self._next_base_fee is None:
            return None
        fee = self._head_base_fee
        if fee is not None:
            return fee
        epoch = self._head_epoch
        fee = self._next_base_fee()
        with self._lock:
            if self._head_epoch == epoch:
                self._head_base_fee = fee
        return fee

    # ---------------------------------------------------------------- admission
    def add(self, tx: SignedTransactionAPI) -> bytes:
        """Validate and admit ``tx``; returns its hash or raises :class:`TxPoolError`.

        Callers need not hold Node.lock: if the head changes between reading its state and
        taking the pool's lock, the state is read again, so no transaction is judged against
        a head the pool has already moved past."""
        for _ in range(MAX_HEAD_RACES):
            epoch = self._head_epoch
            state = self._state()
            base_fee = self._base_fee()
            with self._lock:
                if self._head_epoch == epoch:
                    return self._add(tx, state, base_fee)
        raise TxPoolError("the head is changing too fast: try again")

    def _validate_static(self, tx: SignedTransactionAPI, tx_hash: bytes) -> bytes:
        size = len(tx.encode()) if hasattr(tx, "encode") else len(rlp.encode(tx))
        if size > self._limits.max_tx_size:
            raise TxPoolError(
                f"oversized data: transaction size {size}, limit {self._limits.max_tx_size}")
        chain_id = tx.chain_id
        if chain_id is None:
            raise TxPoolError("only replay-protected (EIP-155) transactions allowed over RPC")
        if chain_id != self.chain_id:
            raise TxPoolError(
                f"invalid chain id for signer: have {chain_id} want {self.chain_id}")
        sender = verify_sender(tx, tx_hash)
        if tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
            raise TxPoolError(
                "max priority fee per gas higher than max fee per gas: address "
                f"{_addr(sender)}, maxPriorityFeePerGas: {tx.max_priority_fee_per_gas}, "
                f"maxFeePerGas: {tx.max_fee_per_gas}")
        if tx.max_priority_fee_per_gas < self._limits.min_tip:
            raise TxPoolError(
                f"transaction gas price below minimum: gas tip cap "
                f"{tx.max_priority_fee_per_gas}, minimum needed {self._limits.min_tip}")
        creation = creation_rule_violation(tx)  # what blocks refuse (poai.chain.corrections)
        if creation is not None:
            raise TxPoolError(creation)
        intrinsic = tx.intrinsic_gas
        if tx.gas < intrinsic:
            raise TxPoolError(f"intrinsic gas too low: gas {tx.gas}, minimum needed {intrinsic}")
        if self._block_gas_limit is not None and tx.gas > self._block_gas_limit():
            raise TxPoolError("exceeds block gas limit")
        return sender

    def _add(self, tx: SignedTransactionAPI, state: StateAPI,
             base_fee: int | None = None) -> bytes:
        """``base_fee``: the next block's, for a new transaction (None for one re-added from a
        block that left the chain, or without a chain behind the pool)."""
        tx_hash = tx.hash
        if tx_hash in self._by_hash:
            raise TxPoolError(f"already known: {tx_hash.hex()}", reason=TxRejection.KNOWN)
        sender = self._validate_static(tx, tx_hash)
        if base_fee is not None and tx.max_fee_per_gas < base_fee:
            raise TxPoolError(
                "max fee per gas less than block base fee: address "
                f"{_addr(sender)}, maxFeePerGas: {tx.max_fee_per_gas}, baseFee: {base_fee}")
        state_nonce = state.get_nonce(Address(sender))
        if tx.nonce < state_nonce:
            raise TxPoolError(
                f"nonce too low: address {_addr(sender)}, tx: {tx.nonce} state: {state_nonce}")
        cost = max_cost(tx)  # gas * max fee + value, + the blob fee of a blob transaction
        balance = state.get_balance(Address(sender))
        if balance < cost:
            raise TxPoolError(
                f"insufficient funds for gas * price + value: address {_addr(sender)} "
                f"have {balance} want {cost}")
        txs = self._by_sender.setdefault(sender, {})
        old = txs.get(tx.nonce)
        if old is not None:
            if not _bumped(old, tx):
                raise TxPoolError("replacement transaction underpriced")
            self._remove(sender, old)
            txs = self._by_sender.setdefault(sender, {})
        elif len(txs) >= self._limits.account_slots:
            raise TxPoolError(
                f"account limit exceeded: {_addr(sender)} has {len(txs)} transactions in the pool")
        elif len(self._by_hash) >= self._limits.global_slots:
            self._evict_cheapest_for(tx, sender)
        txs[tx.nonce] = tx
        self._by_hash[tx_hash] = (sender, tx)
        if logger.isEnabledFor(logging.DEBUG):  # a checksummed address costs ~10% of an add
            logger.debug("txpool: added %s nonce %d from %s", tx_hash.hex(), tx.nonce,
                         _addr(sender))
        return tx_hash

    def _evict_cheapest_for(self, tx: SignedTransactionAPI, sender: bytes) -> None:
        # Evict the cheapest transaction of another sender (its highest nonce, so no gap opens
        # before a remaining transaction) when the newcomer pays more; else the pool is full.
        cheapest: tuple[int, bytes, SignedTransactionAPI] | None = None
        for other, txs in self._by_sender.items():
            if other == sender or not txs:
                continue
            last = txs[max(txs)]
            price = last.max_fee_per_gas
            if cheapest is None or price < cheapest[0]:
                cheapest = (price, other, last)
        if cheapest is None or cheapest[0] >= tx.max_fee_per_gas:
            raise TxPoolError("transaction underpriced: txpool is full")
        logger.debug("txpool: evicting %s", cheapest[2].hash.hex())
        self._remove(cheapest[1], cheapest[2])

    def _remove(self, sender: bytes, tx: SignedTransactionAPI) -> None:
        self._by_hash.pop(tx.hash, None)
        txs = self._by_sender.get(sender)
        if txs is not None and txs.get(tx.nonce) is tx:
            del txs[tx.nonce]
            if not txs:
                del self._by_sender[sender]

    # ---------------------------------------------------------------- queries
    def get(self, tx_hash: bytes) -> SignedTransactionAPI | None:
        with self._lock:
            entry = self._by_hash.get(tx_hash)
            return entry[1] if entry else None

    def __len__(self) -> int:
        return len(self._by_hash)

    def _split(self, state: StateAPI) -> dict[bytes, tuple[list[SignedTransactionAPI],
                                                         list[SignedTransactionAPI]]]:
        """Per sender: (pending in nonce order, queued in nonce order)."""
        out = {}
        for sender, txs in self._by_sender.items():
            nonce = state.get_nonce(Address(sender))
            pending, queued = [], []
            for n in sorted(txs):
                if n == nonce:
                    pending.append(txs[n])
                    nonce += 1
                elif n > nonce:
                    queued.append(txs[n])
            out[sender] = (pending, queued)
        return out

    def pending_nonce(self, sender: bytes) -> int | None:
        """Next nonce after the sender's gap-free pending run, or None if it has none pooled."""
        state = self._state()
        with self._lock:
            txs = self._by_sender.get(sender)
            if not txs:
                return None
            nonce = state.get_nonce(Address(sender))
            while nonce in txs:
                nonce += 1
            return nonce

    def pending_transactions(self) -> list[SignedTransactionAPI]:
        state = self._state()
        with self._lock:
            split = self._split(state)
            return [tx for pending, _ in split.values() for tx in pending]

    def select(self, base_fee: int, gas_limit: int) -> list[SignedTransactionAPI]:
        """Candidates for the next block: per sender in nonce order, senders by tip.

        Each counts against ``gas_limit`` with its intrinsic gas, the least it can use: as in
        geth's miner, the block builder fits transactions by the gas they actually used, so
        counting their declared gas here would leave a block short (500 calls declaring 80,000
        gas and using 27,000 fit one 30M block)."""
        state = self._state()
        with self._lock:
            split = self._split(state)
            heads: list[tuple[int, int, bytes]] = []
            queues: dict[bytes, list[SignedTransactionAPI]] = {}
            for seq, (sender, (pending, _)) in enumerate(split.items()):
                if pending and pending[0].max_fee_per_gas >= base_fee:
                    queues[sender] = pending
                    heapq.heappush(heads, (-_tip(pending[0], base_fee), seq, sender))
            chosen: list[SignedTransactionAPI] = []
            gas_left = gas_limit
            positions = dict.fromkeys(queues, 0)
            while heads and gas_left >= 21000:
                _, seq, sender = heapq.heappop(heads)
                queue = queues[sender]
                tx = queue[positions[sender]]
                least = tx.intrinsic_gas
                if least > gas_left:
                    continue  # this sender's later nonces cannot go before it: skip the sender
                chosen.append(tx)
                gas_left -= least
                positions[sender] += 1
                if positions[sender] < len(queue):
                    nxt = queue[positions[sender]]
                    if nxt.max_fee_per_gas >= base_fee:
                        heapq.heappush(heads, (-_tip(nxt, base_fee), seq, sender))
            return chosen

    # ---------------------------------------------------------------- head changes
    def on_new_head(self, included: Iterable[SignedTransactionAPI],
                    dropped: Iterable[SignedTransactionAPI] = ()) -> None:
        """Drop included and stale transactions; re-add those of blocks that left the chain."""
        dropped = list(dropped)
        with self._lock:
            self._head_epoch += 1
            self._head_state = None
            self._head_base_fee = None
            if not self._by_hash and not dropped:
                return  # nothing to prune or re-add: the new head's state is read when needed
        state = self._state()
        with self._lock:
            for tx in included:
                entry = self._by_hash.get(tx.hash)
                if entry is not None:
                    self._remove(entry[0], entry[1])
            for sender in list(self._by_sender):
                nonce = state.get_nonce(Address(sender))
                for tx in [t for n, t in self._by_sender[sender].items() if n < nonce]:
                    self._remove(sender, tx)
            for tx in dropped:
                try:
                    self._add(tx, state)
                except TxPoolError as exc:
                    logger.debug("txpool: dropped-branch tx %s not re-added: %s",
                                 tx.hash.hex(), exc)

    # ---------------------------------------------------------------- txpool_* views
    def status(self) -> dict[str, int]:
        state = self._state()
        with self._lock:
            split = self._split(state)
            return {"pending": sum(len(p) for p, _ in split.values()),
                    "queued": sum(len(q) for _, q in split.values())}

    def content(self) -> dict[str, dict[bytes, dict[int, SignedTransactionAPI]]]:
        """``{"pending": {sender: {nonce: tx}}, "queued": {...}}``; RPC formats the txs."""
        state = self._state()
        with self._lock:
            split = self._split(state)
            pending = {s: {t.nonce: t for t in p} for s, (p, _) in split.items() if p}
            queued = {s: {t.nonce: t for t in q} for s, (_, q) in split.items() if q}
            return {"pending": pending, "queued": queued}


def _bumped(old: SignedTransactionAPI, new: SignedTransactionAPI) -> bool:
    """geth: a replacement must raise both the fee cap and the tip by PRICE_BUMP_PERCENT."""
    def threshold(value: int) -> int:
        return value * (100 + PRICE_BUMP_PERCENT) // 100

    return (new.max_fee_per_gas >= threshold(old.max_fee_per_gas)
            and new.max_priority_fee_per_gas >= threshold(old.max_priority_fee_per_gas)
            and new.max_fee_per_gas > old.max_fee_per_gas)
