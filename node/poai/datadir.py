"""A node's data directory: the chain database (LevelDB under `chaindata/`), checked against
the genesis config it was made for, or initialised with that genesis in one write batch.

`<datadir>/blobs` and `<datadir>/datasets` (the governed epochs' assets) are the node's stores
(see poai.node); `keystore/` is the CLI's."""

from __future__ import annotations

import json
import logging
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


class DatadirError(RuntimeError):
    """The data directory belongs to another chain, is corrupted, or is in use."""


@dataclass
class OpenChain:
    """The open chain database: every write of a block goes through `buffer` (flushed as one
    LevelDB write batch); `db` is LevelDB itself (safe reads while the buffer is empty)."""

    db: LevelDB
    buffer: WriteBuffer
    chain: PoaiChain


def open_chain(datadir: Path, config: ChainConfig, chain_class: type[PoaiChain]) -> OpenChain:
    """Open (or initialise) the chain in `datadir`; DatadirError when it is not this chain's,
    is corrupted, or is in use by another process."""
    datadir.mkdir(parents=True, exist_ok=True)
    try:
        db = LevelDB(datadir / "chaindata")
    except DatabaseError as exc:
        # LevelDB's words for a LOCK held by another process (not: LOCK cannot be created on
        # a read-only or full file system, which is reported as it is).
        if "temporarily unavailable" in str(exc) or "already held" in str(exc):
            raise DatadirError(f"data dir {datadir} is in use by another process") from exc
        raise DatadirError(f"data dir {datadir}: {exc}") from exc
    try:
        buffer = WriteBuffer(db)
        chain = _check_or_init(datadir, db, buffer, config, chain_class)
    except BaseException:
        db.close()
        raise
    return OpenChain(db, buffer, chain)


def close_chain(opened: OpenChain) -> None:
    """Flush what is buffered and close the database."""
    opened.buffer.flush()
    # py-evm's lru_caches on ChainDB methods keep databases alive until exit.
    clear_caches()
    opened.db.close()


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
