"""`poai devnet --nodes 3`: three node processes on loopback, two mining."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import poai
import pytest
from poai.chain.devaccounts import dev_accounts
from poai.p2p.devnet import miner_coinbase, node_command, plan_devnet, start_devnet
from support.p2p_helpers import wait_for

ASSETS = Path(poai.__file__).parent / "assets"


def free_port_block(n: int) -> int:
    """A base port with n consecutive free ports after it."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n < 65000 and all(_free(base + i) for i in range(n)):
            return base
    raise RuntimeError("no free port block")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def rpc(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        out = json.loads(r.read())
    if "error" in out:
        raise RuntimeError(out["error"])
    return out["result"]


def easy_genesis(tmp: Path) -> Path:
    """The bundled devnet genesis with a low initial difficulty (fast blocks on 2 cores)."""
    cfg = json.loads((ASSETS / "devnet.json").read_text())
    cfg["initialDifficulty"] = 4
    cfg["modelDir"] = str(ASSETS / cfg["modelDir"])
    cfg["dataset"]["path"] = str(ASSETS / cfg["dataset"]["path"])
    path = tmp / "genesis.json"
    path.write_text(json.dumps(cfg))
    return path


def test_plan_gives_each_node_its_dir_ports_and_earlier_peers(tmp_path: Path) -> None:
    net = plan_devnet(3, 2, tmp_path, 18545, 40303)
    assert [n.mining for n in net.nodes] == [True, True, False]
    commands = [node_command(net, n, ["--dev"]) for n in net.nodes]
    coinbases = [c[c.index("--coinbase") + 1] for c in commands[:2]]
    assert coinbases == ["0x" + a.address.hex() for a in dev_accounts(count=2)]
    assert "--coinbase" not in commands[2]  # not mining
    assert node_command(net, net.nodes[0], ["--coinbase=0x" + "11" * 20]).count(
        "--coinbase=0x" + "11" * 20) == 1
    assert not any(a == "--coinbase" for a in node_command(net, net.nodes[0],
                                                          ["--coinbase=0x" + "11" * 20]))
    assert len({n.peer_id for n in net.nodes}) == 3
    assert plan_devnet(3, 2, tmp_path, 18545, 40303).nodes[2].peer_id == net.nodes[2].peer_id
    with pytest.raises(ValueError):
        plan_devnet(0, 0, tmp_path, 1, 1)
    with pytest.raises(ValueError):
        plan_devnet(2, 3, tmp_path, 1, 1)


@pytest.mark.slow
@pytest.mark.integration
def test_three_node_devnet_agrees_and_mines_a_tx_sent_to_the_third(tmp_path: Path) -> None:
    rpc_base, p2p_base = free_port_block(3), free_port_block(3)
    net = start_devnet(3, 2, tmp_path / "net", rpc_base, p2p_base,
                       ["--dev", "--genesis", str(easy_genesis(tmp_path))])
    try:
        urls = [n.rpc_url for n in net.nodes]

        def heads() -> list[str] | None:
            try:
                return [rpc(u, "eth_getBlockByNumber", "latest", False)["hash"] for u in urls]
            except Exception:  # noqa: BLE001 - still starting
                return None

        wait_for(lambda: net.alive() and heads() is not None, timeout=180, what="nodes up")
        wait_for(lambda: int(rpc(urls[2], "eth_blockNumber"), 16) >= 3, timeout=180,
                 what="third node receives blocks")
        deadline = time.monotonic() + 120
        while True:  # blocks keep coming: catch a moment when all three agree
            h = heads()
            if h is not None and len(set(h)) == 1:
                break
            assert time.monotonic() < deadline, f"heads never agreed: {h}"
            time.sleep(0.3)
        from eth_account import Account

        acct = Account.from_key(dev_accounts()[4].private_key)
        signed = acct.sign_transaction({
            "chainId": 7337, "nonce": 0, "to": "0x" + "42" * 20, "value": 12345,
            "gas": 21000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "type": 2})
        tx_hash = rpc(urls[2], "eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())

        def receipt() -> Any:
            return rpc(urls[2], "eth_getTransactionReceipt", tx_hash)

        wait_for(lambda: receipt() is not None, timeout=300, what="tx mined")
        block = rpc(urls[2], "eth_getBlockByHash", receipt()["blockHash"], False)
        coinbases = ["0x" + miner_coinbase(i).hex() for i in range(2)]
        assert block["miner"].lower() in coinbases  # mined by a mining node
        for url in urls:
            assert int(rpc(url, "net_peerCount"), 16) > 0

        def own_blocks(i: int) -> list[Any]:
            """Canonical blocks that mining node i sealed (it reports its attempts on those)."""
            seals = rpc(urls[i], "poai_lastSeals", "0x40")
            return [s for s in seals if "attempts" in s]

        for i in range(2):
            wait_for(lambda i=i: own_blocks(i), timeout=300, what=f"a block by miner {i}")
            assert {s["miner"].lower() for s in own_blocks(i)} == {coinbases[i]}
        assert all(n.process is not None and n.process.poll() is None for n in net.nodes)
    finally:
        net.stop()
