"""Gas of putting one genesis-sized expert on chain: ModelRegistry.registerExpert + one
uploadChunk per 120,000-byte chunk, on a py-evm Prague chain (eth-tester's PyEVMBackend, as in
tests/governance) holding the committed genesis contracts.

The payload is a real expert blob (genesis layer 0 expert 0, scaled by 1.01: a float32
safetensors file, nearly all bytes non-zero). Reports each transaction's gas, the EIP-7623
calldata floor of each upload (40 gas per non-zero byte, 10 per zero byte, + 21,000), the total,
and how much of a 30M-gas block the largest transaction takes. Deterministic: one run is enough.

Prints one JSON object.

    ETH_HASH_BACKEND=pysha3 .venv/bin/python bench/expert_calldata.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for sub in ("bindings/python", "tests/governance"):
    sys.path.insert(0, str(ROOT / sub))


def main() -> None:
    import poai_bindings as B
    from conftest import make_bench  # tests/governance/conftest.py: the eth-tester bench
    from poai.governance.payloads import chunk_hashes, split_chunks
    from poai.model.blobs import decode_tensors, encode_tensors
    from poai.model.genesis import genesis_manifest_hash, genesis_store
    from poai.model.snapshot import read_manifest

    store = genesis_store()
    digest = read_manifest(store, genesis_manifest_hash()).experts[0][0]
    tensors = decode_tensors(store.get(digest), digest)
    blob = encode_tensors({k: t * 1.01 for k, t in tensors.items()})

    b = make_bench()
    reg = b.binding(B.ModelRegistry, "ModelRegistry")
    register = b.send(reg.registerExpert("layer0.expert0", 0, 0, hashlib.sha256(blob).digest(),
                                         len(blob), chunk_hashes(blob), [1]))
    expert_id = reg.expertCount()
    uploads = []
    floors = []
    for k, chunk in enumerate(split_chunks(blob)):
        r = b.send(reg.uploadChunk(expert_id, k, chunk))
        uploads.append(int(r["gasUsed"]))
        tx = b.w3.eth.get_transaction(r["transactionHash"])
        data = bytes(tx["input"])
        zeros = data.count(0)
        floors.append(21_000 + 10 * (zeros + 4 * (len(data) - zeros)))
    assert reg.payloadComplete(expert_id)
    total = int(register["gasUsed"]) + sum(uploads)
    print(json.dumps({
        "blob_bytes": len(blob),
        "nonzero_fraction": round(sum(1 for x in blob if x) / len(blob), 4),
        "chunks": len(uploads),
        "register_gas": int(register["gasUsed"]),
        "upload_gas": uploads,
        "upload_floor_gas": floors,
        "total_gas": total,
        "gas_per_byte": round(total / len(blob), 1),
        "largest_tx_share_of_30M_block": round(max(uploads) / 30_000_000, 3),
    }))


if __name__ == "__main__":
    main()
