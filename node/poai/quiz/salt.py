"""Per-sample salts: S token ids prepended to each sample's data tokens.

Sample j's salt is drawn from the byte stream

    keccak256(s ‖ epochKey ‖ "salt" ‖ uint32be(j) ‖ uint32be(block)),  block = 0, 1, …

one byte per candidate token.  A byte b is accepted when b < floor(256 / count) * count and maps
to token first + b mod count (rejection sampling: uniform over the valid range, no bias).  With the
byte-level tokenizer the valid salt range is exactly the 256 byte tokens, so no byte is ever
rejected and one hash gives 32 salt tokens.

Why a salt at all: without it a sample's loss does not depend on the nonce, so a miner could
compute every record's loss once and grind nonces by hashing alone.  Every data token attends to
the salt (it comes first), so each attempt needs a fresh forward pass.
"""

from __future__ import annotations

from poai.quiz._hash import keccak256, require_bytes32, uint32be

_SALT_TAG = b"salt"


def salt_tokens(
    seed: bytes, epoch_key: bytes, sample: int, salt_len: int, first: int, count: int
) -> tuple[int, ...]:
    """The `salt_len` salt token ids of sample `sample`, uniform in [first, first + count)."""
    if salt_len < 1:
        raise ValueError(f"salt_len must be >= 1, got {salt_len}")
    if not 1 <= count <= 256:
        raise ValueError(f"salt token range size must be in [1, 256], got {count}")
    if first < 0:
        raise ValueError(f"first salt token id must be >= 0, got {first}")
    if sample < 0:
        raise ValueError(f"sample index must be >= 0, got {sample}")
    prefix = (
        require_bytes32("seed", seed)
        + require_bytes32("epoch_key", epoch_key)
        + _SALT_TAG
        + uint32be(sample)
    )
    limit = (256 // count) * count
    out: list[int] = []
    block = 0
    while len(out) < salt_len:
        for b in keccak256(prefix + uint32be(block)):
            if b < limit:
                out.append(first + b % count)
                if len(out) == salt_len:
                    break
        block += 1
    return tuple(out)
