"""Hostile peers: each kind of invalid message is rejected, lowers the sender's score and gets it
banned and disconnected past the threshold, while the victim keeps mining and loses nothing."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_utils import keccak
from poai.chain.builder import BlockTemplate
from poai.chain.devaccounts import dev_accounts
from poai.consensus.seal_hash import seal_hash
from poai.p2p import messages as m
from poai.p2p.host import ACCEPT, HostConfig, P2PHost
from poai.p2p.peers import Offence
from poai.p2p.service import DUPLICATE_ALLOWANCE
from support.p2p_chainmaker import make_template, seal_template, signed_transfers
from support.p2p_helpers import RpcWatch, dial, meshed, wait_for

NodeFactory = Callable[..., tuple[Any, Any]]


def announce(block: Any, td: int = 10**6) -> bytes:
    return m.BlockAnnouncement.for_block(bytes(block.hash), block.number, td,
                                         rlp.encode(block)).encode()


def resealed(node: Any, template: BlockTemplate, header: Any) -> Any:
    """A tampered header with a valid seal of its own (so only the tampering is wrong)."""
    with node.lock:
        ctx = node.quiz_context(template.header)  # the quiz of the untampered block
    block = template.block.copy(header=header)
    return seal_template(node, BlockTemplate(block, template.receipts, seal_hash(header)), ctx)


def bad_seal(node: Any) -> bytes:
    """A sealed block moved to another nonce whose loss hash misses the target."""
    from poai.quiz.reduce import loss_hash, target

    # One second after its parent: the difficulty rises to at least 2 whatever the victim's
    # (at difficulty 1, on a slow machine, every loss hash would meet the target).
    block = seal_template(node, make_template(node, dt=1))
    h = block.header
    assert h.difficulty > 1, "needs a difficulty above 1 (every hash meets difficulty 1)"
    sh = seal_hash(h)
    nonce = next(n for n in range(1000)
                 if loss_hash(sh, n, h.mix_hash) >= target(h.difficulty))
    return announce(block.copy(header=h.copy(nonce=nonce.to_bytes(8, "big"))))


def wrong_q(node: Any) -> bytes:
    """A seal whose loss hash meets the target, but with q_1 forty grid steps off the model's."""
    from poai.quiz.context import load_runner
    from poai.quiz.reduce import claimable_values, find_ticket

    t = make_template(node)
    with node.lock:
        ctx = node.quiz_context(t.header)
    runner = load_runner(ctx)
    for nonce in range(10_000):
        losses = runner.losses(ctx.epoch_key, t.seal_hash, nonce)
        choices = [claimable_values(v, ctx.params.grid_bits, 1 / 64) for v in losses]
        choices[0] = tuple(q + 40 for q in choices[0])
        mix = find_ticket(t.seal_hash, nonce, choices, t.header.difficulty)
        if mix is not None:
            return announce(t.seal(nonce, mix))
    raise AssertionError("no wrong-q ticket found")


def wrong_state_root(node: Any) -> bytes:
    t = make_template(node)
    return announce(resealed(node, t, t.header.copy(state_root=keccak(os.urandom(8)))))


def unknown_parent(node: Any) -> bytes:
    t = make_template(node)
    return announce(resealed(node, t, t.header.copy(parent_hash=keccak(os.urandom(8)))))


def future_timestamp(node: Any) -> bytes:
    with node.lock:
        parent = node.head()
    t = make_template(node, dt=int(time.time()) + 3600 - parent.timestamp)
    return announce(t.block)  # rejected on its timestamp before any seal work


def oversized(node: Any) -> bytes:
    return b"\x00" * (m.MAX_GOSSIP_SIZE + 100)


def garbage(node: Any) -> bytes:
    return b"\xf8\xffgarbage" + os.urandom(32)


def bad_tx_signature(node: Any) -> bytes:
    key = dev_accounts()[1].private_key
    raw = signed_transfers(node.config.chain_id, key, b"\x42" * 20, 1,
                           start_nonce=int.from_bytes(os.urandom(2), "big"))[0]
    fields = rlp.decode(raw[1:])
    fields[-1] = b"\xff" * 32  # s above the curve order: no signature at all
    return m.encode_transactions([raw[:1] + rlp.encode(fields)])


def duplicate(node: Any) -> bytes:
    with node.lock:
        block = node.chain.get_canonical_block_by_number(max(1, node.head().block_number - 1))
    return announce(block)


ATTACKS: list[tuple[str, Callable[[Any], bytes], Offence, bool]] = [
    ("bad seal", bad_seal, Offence.BAD_SEAL, False),
    ("wrong q", wrong_q, Offence.WRONG_Q, False),
    ("wrong state root", wrong_state_root, Offence.WRONG_STATE_ROOT, False),
    ("bad tx signature", bad_tx_signature, Offence.BAD_TX_SIGNATURE, True),
    ("unknown parent", unknown_parent, Offence.UNKNOWN_PARENT, False),
    ("future timestamp", future_timestamp, Offence.FUTURE_TIMESTAMP, False),
    ("oversized", oversized, Offence.OVERSIZED, False),
    ("garbage", garbage, Offence.GARBAGE, False),
    ("duplicate flood", duplicate, Offence.DUPLICATE, False),
]


@pytest.mark.slow
def test_hostile_peers_are_scored_banned_and_harmless(make_node: NodeFactory,
                                                      tmp_path: Path) -> None:
    victim, svc = make_node(mine=True)
    wait_for(lambda: victim.head().block_number >= 2, timeout=120, what="victim mining")
    start_head = victim.head().block_number
    rpc = RpcWatch(victim)
    try:
        # A wallet's transfer sent over RPC while the attacks run is not lost.
        raw = signed_transfers(victim.config.chain_id, dev_accounts()[2].private_key,
                               b"\x43" * 20, 1)[0]
        tx_hash = rpc.call("eth_sendRawTransaction", "0x" + raw.hex())
        attack_all(victim, svc, tmp_path)
        wait_for(lambda: rpc.call("eth_getTransactionReceipt", tx_hash) is not None,
                 timeout=60, what="the wallet's transfer mined")
        assert rpc.call("eth_getTransactionReceipt", tx_hash)["status"] == "0x1"
        # The victim kept answering wallets throughout: every poll succeeded and saw the head
        # move forward.
        wait_for(lambda: len(rpc.heads) >= 5, what="RPC polls")
    finally:
        rpc.close()
    assert rpc.failures == []
    assert rpc.heads == sorted(rpc.heads) and rpc.heads[-1] > rpc.heads[0]
    # Nothing bad got in, and the victim kept mining through it all.
    with victim.lock:
        canonical = [victim.chain.get_canonical_block_by_number(n)
                     for n in range(victim.head().block_number + 1)]
    assert all(b.header.timestamp < time.time() + 60 for b in canonical)
    wait_for(lambda: victim.head().block_number > start_head + 2, timeout=60,
             what="victim still mining")


def attack_all(victim: Any, svc: Any, tmp_path: Path) -> None:
    """Each attack from a fresh hostile peer: score drop, then ban and disconnect."""
    for i, (name, make_msg, offence, is_tx) in enumerate(ATTACKS):
        hostile = P2PHost(HostConfig(datadir=tmp_path / f"hostile{i}"), svc.local_status)
        for topic in (svc.topic_blocks, svc.topic_txs):
            hostile.subscribe(topic, lambda peer, data: ACCEPT)
        hostile.start()
        try:
            dial(hostile, svc.host.full_addrs()[0])
            pid = hostile.peer_id
            wait_for(lambda: pid in svc.host.peers(), what=f"{name}: handshake")  # noqa: B023
            topic = svc.topic_txs if is_tx else svc.topic_blocks
            meshed(hostile, svc.host, topic)
            sends = 0
            if offence is Offence.DUPLICATE:
                # A few duplicates are normal gossip; a burst beyond the allowance is a flood.
                msg_bytes = make_msg(victim)
                for _ in range(DUPLICATE_ALLOWANCE):
                    hostile.publish(topic, msg_bytes)
                time.sleep(1.0)
                assert svc.host.scores.score(pid) == 0.0, "duplicates within the allowance"
                while not svc.host.scores.is_banned(pid):
                    assert sends < 60, f"{name}: not banned after {sends} more messages"
                    hostile.publish(topic, msg_bytes)
                    sends += 1
                    time.sleep(0.05)
                assert svc.host.scores.last_offence(pid) is offence
            else:
                hostile.publish(topic, make_msg(victim))
                sends += 1
                wait_for(lambda: svc.host.scores.score(pid) < 0, timeout=20,  # noqa: B023
                         what=f"{name}: score drop")
                assert svc.host.scores.score(pid) == pytest.approx(-offence.penalty, rel=0.01)
                assert svc.host.scores.last_offence(pid) is offence, name
                while not svc.host.scores.is_banned(pid):
                    assert sends < 20, f"{name}: not banned after {sends} messages"
                    hostile.publish(topic, make_msg(victim))
                    sends += 1
                    time.sleep(0.5)
            wait_for(lambda: pid not in svc.host.connected_peers(),  # noqa: B023
                     what=f"{name}: disconnect")
        finally:
            hostile.stop()
