"""Fixtures for the P2P tests: real libp2p hosts on 127.0.0.1, free ports, stopped after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from poai.p2p import messages as m
from poai.p2p.host import HostConfig, P2PHost
from support.p2p_helpers import CHAIN_STATUS, HostFactory, stop_node


@pytest.fixture
def make_host(tmp_path: Path) -> Iterator[HostFactory]:
    hosts: list[P2PHost] = []
    counter = iter(range(1000))

    def factory(status: m.Status = CHAIN_STATUS, *, datadir: Path | None = None,
                start: bool = True, setup: Callable[[P2PHost], None] | None = None,
                **cfg: object) -> P2PHost:
        d = datadir or tmp_path / f"node{next(counter)}"
        host = P2PHost(HostConfig(datadir=d, **cfg), lambda: status)  # type: ignore[arg-type]
        if setup is not None:
            setup(host)
        if start:
            host.start()
        hosts.append(host)
        return host

    yield factory
    for h in hosts:
        h.stop()


@pytest.fixture(scope="session")
def tiny_chain_config(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tiny real quiz chain of tests/chain (a 1-layer model, difficulty 1, 4-block epochs)."""
    from support.p2p_chainmaker import tiny_config

    return tiny_config(tmp_path_factory.mktemp("p2p-tiny"))


@pytest.fixture
def make_node(tmp_path: Path, tiny_chain_config: Any) -> Iterator[Callable[..., Any]]:
    """Factory of started Nodes with a P2PService each; everything is stopped at the end."""
    from poai.node import Node
    from poai.p2p.service import P2PService

    started: list[tuple[Any, Any]] = []
    counter = iter(range(1000))

    def factory(*, datadir: Path | None = None, mine: bool = False, peers: list[str] = (),
                coinbase: bytes = b"\x00" * 20, config: Any = None,
                sync_batch: int | None = None, **host_cfg: Any
                ) -> tuple[Any, Any]:
        d = datadir or tmp_path / f"node{next(counter)}"
        node = Node(d, config or tiny_chain_config, mine=mine, miner_workers=1,
                    coinbase=coinbase)
        node.start()
        svc = P2PService(node, HostConfig(datadir=d, static_peers=list(peers),
                                          redial_interval=0.5, **host_cfg),
                         sync_batch=sync_batch)
        svc.start()
        started.append((node, svc))
        return node, svc

    yield factory
    for node, svc in reversed(started):
        stop_node(node, svc)
