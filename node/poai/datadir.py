"""A node's data directory: the chain database (LevelDB under `chaindata/`), checked against
the genesis config it was made for, or initialised with that genesis in one write batch.

`<datadir>/blobs` and `<datadir>/datasets` (the governed epochs' assets) are the node's stores
(see poai.node); `keystore/` is the CLI's."""

from __future__ import annotations

import errno
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from eth_typing import Address, BlockNumber

from poai.chain.chain import PoaiChain, create_genesis, genesis_hash
from poai.chain.config import ChainConfig
from poai.compat.pyevm import clear_caches
from poai.db.buffer import WriteBuffer
from poai.db.leveldb import DatabaseError, LevelDB

log = logging.getLogger("poai.node")

MARKER_KEY = b"poai:datadir"
OWNER_FILE = "node.pid"  # {"pid", "command"} of the process holding the chain database


class DatadirError(RuntimeError):
    """The data directory belongs to another chain, is corrupted, or is in use."""


@dataclass
class OpenChain:
    """The open chain database: every write of a block goes through `buffer` (flushed as one
    LevelDB write batch); `db` is LevelDB itself (safe reads while the buffer is empty)."""

    db: LevelDB
    buffer: WriteBuffer
    chain: PoaiChain
    datadir: Path | None = None


def open_chain(datadir: Path, config: ChainConfig, chain_class: type[PoaiChain]) -> OpenChain:
    """Open (or initialise) the chain in `datadir`; DatadirError when it is not this chain's,
    is corrupted, or is in use by another process."""
    try:
        datadir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatadirError(f"cannot use {datadir} as a data dir: {path_problem(exc)}") from exc
    try:
        db = LevelDB(datadir / "chaindata")
    except DatabaseError as exc:
        # LevelDB's words for a LOCK held by another process (not: LOCK cannot be created on
        # a read-only or full file system, which is reported as it is).
        if "temporarily unavailable" in str(exc) or "already held" in str(exc):
            raise DatadirError(
                f"data dir {datadir} is in use by {describe_owner(datadir)}: stop it, or give "
                "this node another --datadir") from exc
        raise DatadirError(f"data dir {datadir}: {exc}") from exc
    try:
        buffer = WriteBuffer(db)
        chain = _check_or_init(datadir, db, buffer, config, chain_class)
    except BaseException:
        db.close()
        raise
    _write_owner(datadir)
    return OpenChain(db, buffer, chain, datadir)


def close_chain(opened: OpenChain) -> None:
    """Flush what is buffered and close the database."""
    opened.buffer.flush()
    # py-evm's lru_caches on ChainDB methods keep databases alive until exit.
    clear_caches()
    opened.db.close()
    if opened.datadir is not None:
        _remove_owner(opened.datadir)


# ------------------------------------------------------------------ who holds the data dir
# LevelDB's LOCK file says that a process holds the database, not which: the holder writes its
# pid and command line next to it, so a second node can name it.

def path_problem(exc: OSError) -> str:
    """An OSError about a path, in words (no traceback, no errno)."""
    if isinstance(exc, NotADirectoryError) or exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a directory"
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied (not writable by this user)"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if isinstance(exc, FileExistsError):
        return "it exists and is not a directory"
    return exc.strerror or str(exc)


def _write_owner(datadir: Path) -> None:
    record = {"pid": os.getpid(), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}
    try:
        (datadir / OWNER_FILE).write_text(json.dumps(record) + "\n")
    except OSError as exc:  # naming the owner is a courtesy: never fail the node for it
        log.debug("cannot write %s: %s", datadir / OWNER_FILE, exc)


def _remove_owner(datadir: Path) -> None:
    path = datadir / OWNER_FILE
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _command_of(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part) or None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _lock_holders(lock: Path) -> list[int]:
    """Processes with `lock` open (Linux /proc; those of other users are not visible)."""
    holders = []
    target = str(lock.resolve())
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == target for fd in fd_dir.iterdir()):
                holders.append(int(fd_dir.parent.name))
        except OSError:
            continue
    return [pid for pid in holders if pid != os.getpid()]


def describe_owner(datadir: Path) -> str:
    """"process 1234 (poai node --dev ...)", or "another process" when it cannot be told."""
    pid: int | None = None
    try:
        record = json.loads((datadir / OWNER_FILE).read_text())
        pid = int(record["pid"])
        command = str(record.get("command", ""))
        if not _alive(pid):
            pid = None
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if pid is None:
        holders = _lock_holders(datadir / "chaindata" / "LOCK")
        if not holders:
            return "another process"
        pid, command = holders[0], ""
    command = _command_of(pid) or command
    return f"process {pid} ({command})" if command else f"process {pid}"


def _check_or_init(
    datadir: Path, db: LevelDB, buffer: WriteBuffer, config: ChainConfig,
    chain_class: type[PoaiChain],
) -> PoaiChain:
    expected = genesis_hash(config)
    raw = db.get(MARKER_KEY) if db.exists(MARKER_KEY) else None
    if raw is None:
        if _has_any_key(db):
            raise DatadirError(
                f"data dir {datadir} holds data but no PoAI chain marker: "
                "not a PoAI data dir, or corrupted"
            )
        chain = create_genesis(buffer, config, chain_class)
        buffer[MARKER_KEY] = json.dumps(
            {"chainId": config.chain_id, "genesisHash": "0x" + expected.hex()}
        ).encode()
        buffer.flush()  # genesis, state and marker in one write batch
        log.info("initialised data dir %s (genesis 0x%s)", datadir, expected.hex())
        return chain
    try:
        marker = json.loads(raw)
        chain_id, stored = int(marker["chainId"]), str(marker["genesisHash"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DatadirError(f"data dir {datadir}: corrupted chain marker") from exc
    if chain_id != config.chain_id or stored != "0x" + expected.hex():
        raise DatadirError(
            f"data dir {datadir} belongs to chain {chain_id} (genesis {stored}), "
            f"but the config is chain {config.chain_id} (genesis 0x{expected.hex()})"
        )
    chain = chain_class(buffer)
    try:
        head = chain.get_canonical_head()
        chain.get_vm(head).state.get_balance(Address(b"\x00" * 20))  # the head's state reads
        if chain.get_canonical_block_hash(BlockNumber(0)) != expected:
            raise DatadirError("genesis block differs from the marker")
    except DatadirError:
        raise
    except Exception as exc:
        raise DatadirError(
            f"data dir {datadir} is corrupted: cannot read the head: {exc!r}"
        ) from exc
    return chain


def _has_any_key(db: LevelDB) -> bool:
    with db.db.iterator(include_value=False) as it:
        for _ in it:
            return True
    return False
