"""Deterministic funded dev accounts from a well-known mnemonic (as anvil and Hardhat do).

The default mnemonic and path m/44'/60'/0'/0/i give the same ten accounts as anvil/Hardhat, so
tools and tutorials that assume 0xf39F…2266 work unchanged.  These keys are public: dev only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from eth_account import Account

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_PATH = "m/44'/60'/0'/0/{index}"


@dataclass(frozen=True)
class DevAccount:
    index: int
    address: bytes  # 20 bytes
    private_key: bytes  # 32 bytes

    @property
    def checksum_address(self) -> str:
        return str(Account.from_key(self.private_key).address)


def dev_accounts(mnemonic: str = DEV_MNEMONIC, count: int = 10) -> tuple[DevAccount, ...]:
    """The first `count` accounts of `mnemonic` on the Ethereum BIP-44 path."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return _derive(mnemonic, count)


@lru_cache(maxsize=4)
def _derive(mnemonic: str, count: int) -> tuple[DevAccount, ...]:
    Account.enable_unaudited_hdwallet_features()
    out = []
    for i in range(count):
        acct = Account.from_mnemonic(mnemonic, account_path=DEV_PATH.format(index=i))
        out.append(DevAccount(i, bytes.fromhex(acct.address[2:]), bytes(acct.key)))
    return tuple(out)
