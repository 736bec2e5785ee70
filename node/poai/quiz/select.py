"""Attempt seed and record selection.

For header seal hash H and nonce n the attempt seed is s = keccak256(H ‖ uint64be(n)).  Sample j
(0-based) of the attempt reads record

    index_j = x mod n_records,
    x = int(keccak256(s ‖ epochKey ‖ "idx" ‖ uint32be(j) ‖ uint32be(c)))

for the smallest counter c = 0, 1, … with x < floor(2**256 / n_records) * n_records (rejection
sampling, so every record is exactly equally likely; a rejection has probability < n / 2**256 and
in practice never happens, but the rule is fixed so it is consensus, not luck).

The K draws are independent, so duplicates are allowed: two samples may read the same record.
They still yield independent losses, because each sample gets its own salt (see salt.py); refusing
duplicates would only make selection depend on K and n_records in a more complex way.
"""

from __future__ import annotations

from poai.quiz._hash import keccak256, require_bytes32, uint32be, uint64be

_IDX_TAG = b"idx"
_TWO_256 = 1 << 256


def attempt_seed(seal_hash: bytes, nonce: int) -> bytes:
    """s = keccak256(sealHash ‖ uint64be(nonce))."""
    return keccak256(require_bytes32("seal_hash", seal_hash) + uint64be(nonce))


def record_index(seed: bytes, epoch_key: bytes, sample: int, n_records: int) -> int:
    """Unbiased index in [0, n_records) of the record read by sample `sample` of an attempt."""
    if n_records < 1:
        raise ValueError(f"dataset has no records (n_records={n_records})")
    if sample < 0:
        raise ValueError(f"sample index must be >= 0, got {sample}")
    prefix = (
        require_bytes32("seed", seed)
        + require_bytes32("epoch_key", epoch_key)
        + _IDX_TAG
        + uint32be(sample)
    )
    limit = (_TWO_256 // n_records) * n_records
    counter = 0
    while True:
        x = int.from_bytes(keccak256(prefix + uint32be(counter)), "big")
        if x < limit:
            return x % n_records
        counter += 1


def record_indices(seed: bytes, epoch_key: bytes, k: int, n_records: int) -> tuple[int, ...]:
    """The K record indices of an attempt (independent draws; duplicates allowed)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return tuple(record_index(seed, epoch_key, j, n_records) for j in range(k))
