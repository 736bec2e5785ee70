from __future__ import annotations

from poai.chain.devaccounts import DEV_MNEMONIC, dev_accounts


def test_same_accounts_as_anvil_and_hardhat() -> None:
    accts = dev_accounts(DEV_MNEMONIC, 10)
    assert accts[0].checksum_address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert accts[0].private_key.hex() == (
        "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
    )
    assert accts[9].checksum_address == "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
    assert len({a.address for a in accts}) == 10


def test_count_is_checked() -> None:
    import pytest

    with pytest.raises(ValueError):
        dev_accounts(DEV_MNEMONIC, -1)
