from __future__ import annotations

import rlp
from eth.vm.forks.prague.blocks import PragueBlockHeader
from eth_hash.auto import keccak
from poai.consensus.seal_hash import seal_hash


def _header(**over: object) -> PragueBlockHeader:
    fields: dict[str, object] = dict(
        parent_hash=b"\x11" * 32, uncles_hash=b"\x22" * 32, coinbase=b"\x33" * 20,
        state_root=b"\x44" * 32, transaction_root=b"\x55" * 32, receipt_root=b"\x66" * 32,
        bloom=7, difficulty=12345, block_number=42, gas_limit=30_000_000, gas_used=21_000,
        timestamp=1_767_225_642, extra_data=b"poai", mix_hash=b"\x77" * 32,
        nonce=(0x0102030405060708).to_bytes(8, "big"), base_fee_per_gas=875_000_000,
        withdrawals_root=b"\x88" * 32, blob_gas_used=0, excess_blob_gas=0,
        parent_beacon_block_root=b"\x00" * 32, requests_hash=b"\x99" * 32,
    )
    fields.update(over)
    return PragueBlockHeader(**fields)  # type: ignore[arg-type]


# Golden vector, cross-checked when written against a hand-written RLP encoder (not the rlp
# package): every field but mixHash and nonce, geth SealHash order; pins the encoding.
GOLDEN = "6b6835c0528526ebe657a02bc022de4e7c5eb1471bd29b990753721b7ebeee03"


def test_golden_vector() -> None:
    assert seal_hash(_header()).hex() == GOLDEN


def test_matches_definition_without_mix_hash_and_nonce() -> None:
    h = _header()
    fields = list(PragueBlockHeader.serialize(h))
    expected = keccak(rlp.encode(fields[:13] + fields[15:]))
    assert seal_hash(h) == expected
    # And it is not the block hash (which covers the seal).
    assert seal_hash(h) != h.hash


def test_independent_of_seal_fields() -> None:
    a = _header()
    b = _header(mix_hash=b"\xaa" * 32, nonce=b"\xff" * 8)
    assert seal_hash(a) == seal_hash(b)
    assert a.hash != b.hash


def test_covers_every_other_field() -> None:
    base = seal_hash(_header())
    for name, value in [
        ("difficulty", 12346), ("timestamp", 1_767_225_643), ("state_root", b"\x45" * 32),
        ("base_fee_per_gas", 875_000_001), ("requests_hash", b"\x98" * 32),
        ("parent_beacon_block_root", b"\x01" * 32), ("extra_data", b"poaj"),
        ("coinbase", b"\x34" * 20), ("gas_used", 21_001),
    ]:
        assert seal_hash(_header(**{name: value})) != base, name
