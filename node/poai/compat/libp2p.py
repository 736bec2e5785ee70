"""py-libp2p: larger pubsub queues and an exclusive TCP listen port, process-wide.

py-libp2p gives every peer an outbound RPC queue of 32 messages and every subscription a
channel of 32, and drops silently when full: a burst of transactions or blocks on a devnet
overflows both.  `install(size)` makes pubsub create bigger ones (both names are module
globals that `libp2p.pubsub.pubsub` reads when it creates a queue or a channel).  The P2P
host calls it when it starts; libp2p is imported then, not before (it is heavy and only a
node with networking needs it).

py-libp2p's TCP listener also sets SO_REUSEPORT (for hole punching, which PoAI does not use),
so two nodes on one machine would both bind a port and the kernel would split peers between
them. `install` keeps SO_REUSEADDR only: a restart rebinds at once, a port in use is an error.

Blacklisting a peer (what a ban does) runs pubsub's `_teardown_if_connected`, which resets the
peer's stream and then `del self.peers[peer]`; while it awaits the reset, the disconnect that
the ban also makes runs pubsub's dead-peer handler, which removes the same entry first.  The
`KeyError` then escapes a pubsub task and takes the whole libp2p service down (the node stops
listening for peers).  `install` makes the removal tolerate an entry already gone.
"""

from __future__ import annotations

from typing import Any

from poai.compat import Reliance

RELIES_ON: tuple[Reliance, ...] = (
    Reliance("libp2p.pubsub.rpc_queue:RpcQueue.__init__",
             "(self, max_size=32, max_message_size=1048576)"),
    Reliance("libp2p.pubsub.pubsub:RpcQueue"),
    Reliance("libp2p.pubsub.pubsub:SUBSCRIPTION_CHANNEL_SIZE"),
    Reliance("libp2p.transport.tcp.tcp:_set_reuse_flags", "(sock)"),
    # the swarm's own dialler (not part of INetworkService)
    Reliance("libp2p.network.swarm:Swarm.auto_connector", instance_attr=True),
    Reliance("libp2p.pubsub.pubsub:Pubsub._teardown_if_connected", "(self, peer_id)"),
    Reliance("libp2p.pubsub.pubsub:Pubsub._forget_all_subscriptions", "(self, peer_id)"),
    Reliance("libp2p.pubsub.pubsub:Pubsub.peers", instance_attr=True),
)


async def teardown_if_connected(self: Any, peer_id: Any) -> None:
    """Pubsub._teardown_if_connected that tolerates the peer's entry being removed by the
    dead-peer handler while its stream is reset."""
    stream = self.peers.get(peer_id)
    if stream is not None:
        try:
            await stream.reset()
        except Exception:  # noqa: BLE001, S110 - as the original: a reset may fail on a dead stream
            pass
        self.peers.pop(peer_id, None)
    self._forget_all_subscriptions(peer_id)


def install(size: int) -> None:
    """Pubsub's outbound queues and subscription channels hold at least `size` messages, and
    TCP listeners do not share their port. Idempotent: the first call's size stays."""
    import socket

    import libp2p.pubsub.pubsub as ps
    import libp2p.transport.tcp.tcp as tcp
    from libp2p.pubsub.rpc_queue import RpcQueue

    def set_reuse_addr_only(sock: Any) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    tcp._set_reuse_flags = set_reuse_addr_only
    ps.Pubsub._teardown_if_connected = teardown_if_connected  # type: ignore[method-assign]

    if getattr(ps.RpcQueue, "_poai_tuned", False):  # type: ignore[attr-defined]
        return

    class _LargeRpcQueue(RpcQueue):
        _poai_tuned = True

        def __init__(self, max_size: int = size, **kw: Any) -> None:
            super().__init__(max_size=max(max_size, size), **kw)

    ps.RpcQueue = _LargeRpcQueue  # type: ignore[attr-defined,assignment]
    ps.SUBSCRIPTION_CHANNEL_SIZE = size


async def stop_auto_connector(network: Any) -> None:
    """Stop the swarm's auto-connector, which dials every peerstore entry (banned peers
    included) toward 100+ connections; the node does its own dialling."""
    await network.auto_connector.stop()


__all__ = ["RELIES_ON", "install", "stop_auto_connector", "teardown_if_connected"]
