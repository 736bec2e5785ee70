"""Expert payloads carried by the chain: registered + uploaded in chunks on a py-evm chain
holding the genesis contracts, collected block by block into a blob store."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import poai_bindings as B
import pytest
from poai.governance.payloads import (
    CHUNK_BYTES,
    PayloadCollector,
    chunk_hashes,
    completed_payloads,
    split_chunks,
    uploaded_chunks,
)
from poai.model.store import BlobStore


def _collect_all(bench: Any, collector: PayloadCollector, start: int = 1) -> list[str]:
    chain = bench.backend.chain
    written: list[str] = []
    for n in range(start, bench.head_number() + 1):
        block = chain.get_canonical_block_by_number(n)
        written += collector.on_block(
            block, lambda b=block: b.get_receipts(chain.chaindb),
            lambda b=block: chain.get_vm(b.header).state)
    return written


def _collector(bench: Any, tmp_path: Path) -> PayloadCollector:
    return PayloadCollector(bench.contracts.registry, BlobStore(tmp_path / "blobs"),
                            BlobStore(tmp_path / "chunks"))


def test_chunking_matches_the_contract(bench: Any) -> None:
    reg = bench.binding(B.ModelRegistry, "ModelRegistry")
    assert reg.CHUNK_BYTES() == CHUNK_BYTES
    blob = bytes(range(256)) * 1000
    assert [len(c) for c in split_chunks(blob)] == [CHUNK_BYTES, CHUNK_BYTES, 16_000]
    assert reg.chunkCount(len(blob)) == 3 == len(chunk_hashes(blob))
    assert b"".join(split_chunks(blob)) == blob


def test_a_registered_payload_lands_in_the_blob_store(bench: Any, tmp_path: Path,
                                                      upload: Callable[..., int]) -> None:
    reg = bench.binding(B.ModelRegistry, "ModelRegistry")
    blob = hashlib.sha256(b"seed").digest() * 7000  # 224,000 bytes: two chunks
    collector = _collector(bench, tmp_path)
    expert_id = upload(bench, reg, "layer1.expert2", 1, 2, blob, [])
    assert reg.payloadComplete(expert_id)
    digest = hashlib.sha256(blob).hexdigest()
    assert _collect_all(bench, collector) == [digest]
    assert collector.blob_store.get(digest) == blob
    assert collector.chunk_store.digests() == []  # chunks dropped once joined
    # collecting the same blocks again (a re-import) is harmless
    assert _collect_all(bench, collector) == [digest]


def test_incomplete_payload_is_not_stored(bench: Any, tmp_path: Path) -> None:
    reg = bench.binding(B.ModelRegistry, "ModelRegistry")
    blob = b"\x07" * (CHUNK_BYTES + 5)
    bench.send(reg.registerExpert("l0e1", 0, 1, hashlib.sha256(blob).digest(), len(blob),
                                  chunk_hashes(blob), []))
    bench.send(reg.uploadChunk(reg.expertCount(), 0, split_chunks(blob)[0]))
    collector = _collector(bench, tmp_path)
    assert _collect_all(bench, collector) == []
    assert collector.blob_store.digests() == []
    assert collector.chunk_store.digests() == [hashlib.sha256(split_chunks(blob)[0]).hexdigest()]


def test_a_false_payload_hash_is_refused(bench: Any, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """Multi-chunk: the contract checks each chunk, nodes check the whole payload's hash."""
    reg = bench.binding(B.ModelRegistry, "ModelRegistry")
    blob = b"\x09" * (CHUNK_BYTES + 5)
    lie = hashlib.sha256(b"something else").digest()
    bench.send(reg.registerExpert("l0e1", 0, 1, lie, len(blob), chunk_hashes(blob), []))
    for k, c in enumerate(split_chunks(blob)):
        bench.send(reg.uploadChunk(reg.expertCount(), k, c))
    collector = _collector(bench, tmp_path)
    with caplog.at_level(logging.WARNING, logger="poai.governance.payloads"):
        assert _collect_all(bench, collector) == []
    assert "does not match its registered hash" in caplog.text
    assert collector.blob_store.digests() == []


def test_chunks_need_their_log_and_their_bytes(bench: Any, upload: Callable[..., int]) -> None:
    """A chunk counts only with the registry's ChunkUploaded log for those bytes."""
    reg = bench.binding(B.ModelRegistry, "ModelRegistry")
    blob = b"\x05" * 100
    upload(bench, reg, "l0e1", 0, 1, blob, [])
    chain = bench.backend.chain
    block = chain.get_canonical_block_by_number(bench.head_number())
    receipts = block.get_receipts(chain.chaindb)
    registry = bench.contracts.registry
    assert [c.data for c in uploaded_chunks(block.transactions, receipts, registry)] == [blob]
    assert completed_payloads(receipts, registry) == [(reg.expertCount(),
                                                       hashlib.sha256(blob).digest())]
    assert uploaded_chunks(block.transactions, receipts, b"\x11" * 20) == []
    no_logs = [r.copy(logs=()) for r in receipts]
    assert uploaded_chunks(block.transactions, no_logs, registry) == []


def test_node_listener_takes_only_blocks_joining_the_canonical_chain(
        bench: Any, tmp_path: Path, upload: Callable[..., int]) -> None:
    """A reorg's removed blocks give nothing; the same blocks joining the canonical chain give
    the payload (content-addressed: the bytes are what they hash to, whichever block held them)."""
    from poai.node import NewHead

    reg = bench.binding(B.ModelRegistry, "ModelRegistry")
    blob = b"\x03" * 1000
    upload(bench, reg, "l0e1", 0, 1, blob, [])
    chain = bench.backend.chain
    blocks = tuple(chain.get_canonical_block_by_number(n)
                   for n in range(1, bench.head_number() + 1))
    head = blocks[-1]
    collector = _collector(bench, tmp_path)
    on_event = collector.listener(lambda: chain)
    on_event(NewHead(head, lambda: tuple(head.get_receipts(chain.chaindb)),
                     removed_blocks=blocks, added_blocks=()))
    assert collector.blob_store.digests() == [] and collector.chunk_store.digests() == []
    on_event(NewHead(head, lambda: tuple(head.get_receipts(chain.chaindb)),
                     removed_blocks=(), added_blocks=blocks))
    assert collector.blob_store.get(hashlib.sha256(blob).hexdigest()) == blob


def test_a_dataset_file_uploaded_to_the_dao_lands_in_the_dataset_dir(
    bench: Any, tmp_path: Path,
) -> None:
    """A dataset file travels like an expert: announced and uploaded in chunks to DatasetDAO,
    joined by every node into <datadir>/datasets/<sha256>.poaids, where the epoch reading
    finds it (no P2P, no copy); bad chunk sequences are refused in words."""
    from poai.chain.config import load_genesis_config
    from poai.governance.commands import decode_revert
    from poai.governance.epoch_context import EpochAssetResolver, GenesisAssets
    from poai.governance.payloads import DatasetFileCollector
    from poai.governance.reader import DatasetInfo
    from poai.model.dataset import build_dataset
    from poai.model.genesis import VALIDATION_TEXT
    from web3.exceptions import ContractLogicError

    text = tmp_path / "quiz.txt"
    text.write_bytes(VALIDATION_TEXT.read_bytes()[: 64 * 1900])
    key = hashlib.sha256(b"dataset on chain").digest()
    sha = bytes.fromhex(build_dataset(text, tmp_path / "d.poaids", key, 64))
    data = (tmp_path / "d.poaids").read_bytes()
    chunks = split_chunks(data)
    assert len(chunks) == 2  # a real multi-chunk file
    dao = bench.binding(B.DatasetDAO, "DatasetDAO")
    assert dao.CHUNK_BYTES() == CHUNK_BYTES

    def refused(fn: Any) -> str:
        try:
            fn.call({"from": bench.account.address})
        except ContractLogicError as exc:
            return decode_revert(bytes.fromhex(str(exc.data)[2:]))
        except Exception as exc:  # noqa: BLE001 - eth-tester: "execution reverted: b'..'"
            import ast

            return decode_revert(ast.literal_eval(str(exc).removeprefix(
                "execution reverted: ")))
        raise AssertionError("not refused")

    assert refused(dao.uploadFileChunk(sha, 0, chunks[0])).startswith("UnknownFile(")
    bench.send(dao.announceFile(sha, len(data), chunk_hashes(data)))
    assert refused(dao.announceFile(sha, len(data), chunk_hashes(data))).startswith(
        "FileAlreadyAnnounced(")
    assert refused(dao.uploadFileChunk(sha, 1, chunks[1])).startswith("ChunkOutOfOrder(")
    bench.send(dao.uploadFileChunk(sha, 0, chunks[0]))
    assert refused(dao.uploadFileChunk(sha, 0, chunks[0])).startswith("DuplicateChunk(")
    assert not dao.fileComplete(sha)
    bench.send(dao.uploadFileChunk(sha, 1, chunks[1]))
    assert dao.fileComplete(sha)

    collector = DatasetFileCollector(bench.contracts.dataset_dao, tmp_path / "datasets",
                                     BlobStore(tmp_path / "dchunks"))
    chain = bench.backend.chain
    written: list[str] = []
    for n in range(1, bench.head_number() + 1):
        block = chain.get_canonical_block_by_number(n)
        written += collector.on_block(block, lambda b=block: b.get_receipts(chain.chaindb),
                                      lambda b=block: chain.get_vm(b.header).state)
    assert written == [sha.hex()]
    assert collector.path(sha).read_bytes() == data
    assert collector.chunk_store.digests() == []
    resolver = EpochAssetResolver(bench.contracts,
                                  GenesisAssets.from_chain_config(load_genesis_config()),
                                  tmp_path / "blobs", tmp_path / "datasets")
    path, got_key = resolver.dataset_assets(DatasetInfo(sha, 1900, key, 2))
    assert path == collector.path(sha) and got_key == key


def test_chunks_of_uploads_that_never_complete_are_pruned(tmp_path: Path) -> None:
    import os
    import time

    from poai.governance.payloads import CHUNK_TTL_S, prune_chunks

    store = BlobStore(tmp_path / "chunks")
    old, new = store.put(b"abandoned chunk"), store.put(b"recent chunk")
    past = time.time() - CHUNK_TTL_S - 10
    os.utime(store.path(old), (past, past))
    assert prune_chunks(store) == 1
    assert store.digests() == [new]
