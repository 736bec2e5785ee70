"""Every library name PoAI patches or reaches into still exists, with the recorded signature.

Data-driven: each module of poai.compat lists its names in RELIES_ON; a library upgrade that
renames, removes or re-shapes one fails here, naming it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from types import ModuleType
from typing import Any

import poai.compat
import pytest
from poai.compat import TESTED_VERSIONS, Reliance, UntestedLibrary, check_versions

MODULES = [importlib.import_module(f"poai.compat.{m.name}")
           for m in pkgutil.iter_modules(poai.compat.__path__)]
RELIANCES = [(mod.__name__.rsplit(".", 1)[1], r) for mod in MODULES for r in mod.RELIES_ON]


def _owner_and_raw(name: str) -> tuple[Any, str, Any]:
    module_name, qualname = name.split(":")
    owner: Any = importlib.import_module(module_name)
    *path, last = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, last, inspect.getattr_static(owner, last, _MISSING)


_MISSING = object()


def _plain_signature(obj: Any) -> str:
    """The parameter list without annotations: names, kinds and defaults."""
    for attr in ("func", "fget", "__func__"):  # cached_property, property, classmethod
        obj = getattr(obj, attr, obj)
    sig = inspect.signature(obj)
    return str(sig.replace(
        parameters=[p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()],
        return_annotation=inspect.Signature.empty))


def _assigned_on_self(cls: type, attr: str) -> bool:
    """`attr` is a slot of, or assigned as ``self.attr`` in the source of, a class of `cls`'s
    MRO."""
    pattern = re.compile(rf"\bself\.{re.escape(attr)}\s*(:[^=\n]*)?=[^=]")
    for klass in cls.__mro__:
        if attr in getattr(klass, "__slots__", ()):
            return True
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        if pattern.search(source):
            return True
    return False


def test_every_compat_module_lists_its_names() -> None:
    names = {m.__name__ for m in MODULES}
    assert {"poai.compat.pyevm", "poai.compat.libp2p", "poai.compat.transformers"} <= names
    for mod in MODULES:
        assert isinstance(mod, ModuleType) and mod.RELIES_ON, f"{mod.__name__} lists no names"
        assert all(isinstance(r, Reliance) for r in mod.RELIES_ON)


@pytest.mark.parametrize(("library", "reliance"), RELIANCES,
                         ids=[r.name for _, r in RELIANCES])
def test_library_name_still_exists(library: str, reliance: Reliance) -> None:
    owner, attr, raw = _owner_and_raw(reliance.name)
    if reliance.instance_attr:
        assert isinstance(owner, type), f"{reliance.name}: owner is not a class"
        assert _assigned_on_self(owner, attr), (
            f"{reliance.name}: no longer set on instances ({library} upgrade?)")
        return
    assert raw is not _MISSING, f"{reliance.name} is gone ({library} upgrade?)"
    if reliance.signature is not None:
        assert _plain_signature(raw) == reliance.signature, (
            f"{reliance.name} changed signature ({library} upgrade?)")


def test_signature_check_can_fail() -> None:
    """The checks above see a changed name or signature (not only pass)."""
    with pytest.raises(AssertionError):
        test_library_name_still_exists("py-evm", Reliance("eth.db.account:AccountDB._set_account",
                                                          "(self, address)"))
    with pytest.raises(AssertionError):
        test_library_name_still_exists("py-evm", Reliance("eth.db.account:AccountDB._nope", "()"))
    with pytest.raises(AssertionError):
        test_library_name_still_exists("py-evm", Reliance("eth.db.account:AccountDB._nope",
                                                          instance_attr=True))


def test_installed_versions_are_the_tested_ones() -> None:
    check_versions(allow_untested=False)


def test_untested_version_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TESTED_VERSIONS, "py-evm", "0.0.1")
    monkeypatch.delenv(poai.compat.ALLOW_UNTESTED_ENV, raising=False)
    with pytest.raises(UntestedLibrary) as info:
        check_versions()
    message = str(info.value)
    assert "\n" not in message
    assert "py-evm 0.12.1b1 (tested: 0.0.1)" in message
    assert poai.compat.ALLOW_UNTESTED_ENV in message
    monkeypatch.setenv(poai.compat.ALLOW_UNTESTED_ENV, "1")
    check_versions()  # the override lets it through


def test_pyevm_builds_ordered_tries_through_poai() -> None:
    """Installed for the test session as the node installs it at start (tests/conftest.py)."""
    from poai.chain.ordered_trie import make_trie_root_and_nodes
    from poai.compat.pyevm import installed_trie_builder

    assert installed_trie_builder() is make_trie_root_and_nodes
    import eth.db.chain

    assert eth.db.chain.make_trie_root_and_nodes is make_trie_root_and_nodes


def test_libp2p_install_enlarges_pubsub_queues() -> None:
    """A queue made by pubsub takes 100 messages, where py-libp2p's default drops after 32."""
    import libp2p.pubsub.pubsub as ps
    from libp2p.pubsub.pb import rpc_pb2
    from poai.compat import libp2p as compat_libp2p

    compat_libp2p.install(4096)
    compat_libp2p.install(4096)  # idempotent
    assert ps.SUBSCRIPTION_CHANNEL_SIZE == 4096
    queue = ps.RpcQueue()
    assert all(queue.push(rpc_pb2.RPC()) for _ in range(100))


def test_libp2p_blacklist_teardown_tolerates_a_peer_already_gone() -> None:
    """The race a ban runs into: while pubsub's teardown resets a blacklisted peer's stream, the
    dead-peer handler (the ban's disconnect) removes the peer first.  py-libp2p's own teardown
    then raised KeyError inside a pubsub task and took the node's whole libp2p service down;
    installed, the teardown finishes and forgets the peer's subscriptions."""
    import libp2p.pubsub.pubsub as ps
    import trio
    from libp2p.peer.id import ID
    from poai.compat import libp2p as compat_libp2p

    compat_libp2p.install(4096)
    assert ps.Pubsub._teardown_if_connected is compat_libp2p.teardown_if_connected
    pubsub = object.__new__(ps.Pubsub)  # the real class; only the state this path reads
    peer = ID(b"\x00\x24\x08\x01\x12\x20" + b"\x07" * 32)
    other = ID(b"\x00\x24\x08\x01\x12\x20" + b"\x08" * 32)

    class Stream:
        async def reset(self) -> None:
            await trio.sleep(0)
            del pubsub.peers[peer]  # the dead-peer handler got there first

    pubsub.peers = {peer: Stream(), other: Stream()}
    pubsub.peer_topics = {"blocks": {peer, other}, "txs": {peer}}
    pubsub._peer_subscription_count = {peer: 2}
    pubsub._replayed_recent_topics = {}
    trio.run(pubsub._teardown_if_connected, peer)
    assert list(pubsub.peers) == [other]
    assert pubsub.peer_topics == {"blocks": {other}}
    assert peer not in pubsub._peer_subscription_count
