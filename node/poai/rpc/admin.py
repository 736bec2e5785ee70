"""rpc_modules and the admin_* namespace (admin_nodeInfo, admin_peers), shaped as geth's.

`rpc_modules` answers the namespaces this server serves, `{"eth": "1.0", ...}`.  The admin
methods describe this node and its peers; the server registers them only when it listens on
loopback, or when the operator asks (`poai node --rpc-admin`), as geth keeps `admin` off its
public HTTP API.  PoAI peers speak libp2p, not devp2p: `enode` holds the libp2p multiaddr a
peer dials (what `poai node --peer` takes), `id` the libp2p peer id, and the protocol is
`poai` where geth has `eth` (same fields: network, difficulty, genesis, head).
"""

from __future__ import annotations

import re
from typing import Any

from poai.rpc import dev
from poai.rpc.context import RpcContext
from poai.rpc.hexutil import data
from poai.rpc.params import NO_PARAMS, Arg

_MULTIADDR = re.compile(r"^/(ip4|ip6|dns4|dns6|dns)/([^/]+)/tcp/(\d+)(?:/.*?)?(?:/p2p/(\w+))?$")


def rpc_modules(ctx: RpcContext, params: list[Any]) -> dict[str, str]:
    """The namespaces this node serves; a non-dev node leaves out those whose every method
    is dev-only (evm_, anvil_, hardhat_, personal_: refused there)."""
    methods = [m for m in ctx.method_names() if "_" in m]
    if ctx.node.dev is None:
        methods = [m for m in methods if m not in dev.METHODS]
    names = sorted({m.split("_", 1)[0] for m in methods})
    return {name: "1.0" for name in names}


def _protocol(ctx: RpcContext) -> dict[str, Any]:
    head = ctx.node.head()
    genesis = ctx.header_by_number(0)
    return {
        "network": ctx.chain_id,
        "difficulty": ctx.total_difficulty(head) or 0,
        "genesis": data(bytes(genesis.hash)) if genesis is not None else None,
        "config": {"chainId": ctx.chain_id},
        "head": data(bytes(head.hash)),
    }


def node_info(ctx: RpcContext, params: list[Any]) -> dict[str, Any]:
    network = ctx.node.network
    addrs = network.listen_addrs() if network is not None else []
    info: dict[str, Any] = {"id": "", "name": ctx.client_version, "enode": "",
                            "ip": "", "ports": {"discovery": 0, "listener": 0},
                            "listenAddr": "", "protocols": {"poai": _protocol(ctx)}}
    if addrs:
        info["enode"] = addrs[0]
        m = _MULTIADDR.match(addrs[0])
        if m is not None:
            ip, port = m.group(2), int(m.group(3))
            info["ip"] = ip
            info["ports"] = {"discovery": 0, "listener": port}  # no discovery protocol
            info["listenAddr"] = f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
        if "/p2p/" in addrs[0]:
            info["id"] = addrs[0].rsplit("/p2p/", 1)[1]
    return info


def peers(ctx: RpcContext, params: list[Any]) -> list[dict[str, Any]]:
    network = ctx.node.network
    if network is None:
        return []
    out = []
    for peer in network.peers_info():
        peer_id = str(peer.get("id", ""))
        out.append({
            "enode": f"/p2p/{peer_id}", "id": peer_id, "name": "", "caps": ["poai"],
            "protocols": {"poai": {k: v for k, v in peer.items() if k != "id"}},
        })
    return out


METHODS = {"rpc_modules": rpc_modules}
PARAMS: dict[str, tuple[Arg, ...]] = {"rpc_modules": NO_PARAMS}

ADMIN_METHODS = {"admin_nodeInfo": node_info, "admin_peers": peers}
ADMIN_PARAMS: dict[str, tuple[Arg, ...]] = {"admin_nodeInfo": NO_PARAMS, "admin_peers": NO_PARAMS}
