"""The `poai` command line: help everywhere, init, accounts, status and one-line errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from poai import cli

POAI = [sys.executable, "-m", "poai.cli"]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*POAI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("argv", [[], ["init"], ["node"], ["account"], ["account", "new"],
                                  ["account", "list"], ["status"]])
def test_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "--help"])
    assert exc.value.code == 0
    assert "usage: poai" in capsys.readouterr().out


def test_bad_argument_is_one_line_exit_2() -> None:
    res = run("node", "--rpc-port", "99999")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "port out of range" in res.stderr
    res = run("node", "--coinbase", "0x1234")
    assert res.returncode == 2 and "20-byte" in res.stderr
    assert run("frobnicate").returncode == 2


def test_init_and_datadir_of_another_chain(tmp_path: Path) -> None:
    datadir = tmp_path / "dd"
    assert cli.main(["init", "--datadir", str(datadir)]) == 0
    record = json.loads((datadir / cli.CHAIN_FILE).read_text())
    assert record["genesisHash"].startswith("0x")
    assert cli.main(["init", "--datadir", str(datadir)]) == 0  # idempotent
    other = json.loads(Path(record["genesis"]).read_text())
    other["chainId"] = other["chainId"] + 1
    base = Path(record["genesis"]).parent
    other["dataset"]["path"] = str((base / other["dataset"]["path"]).resolve())
    other["modelDir"] = str((base / other.get("modelDir", "model")).resolve())
    genesis = tmp_path / "other.json"
    genesis.write_text(json.dumps(other))
    res = run("init", "--datadir", str(datadir), "--genesis", str(genesis))
    assert res.returncode == 2 and "another chain" in res.stderr
    assert res.stderr.strip().count("\n") == 0
    (datadir / cli.CHAIN_FILE).write_text("{garbage")
    res = run("node", "--datadir", str(datadir))
    assert res.returncode == 2 and "corrupted" in res.stderr


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        res = run("node", "--datadir", str(tmp_path / "dd"), "--rpc-port", str(port))
    assert res.returncode == 2 and "cannot listen" in res.stderr, res.stderr


def test_untested_library_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import poai.compat

    monkeypatch.setitem(poai.compat.TESTED_VERSIONS, "libp2p", "0.0.1")
    monkeypatch.delenv(poai.compat.ALLOW_UNTESTED_ENV, raising=False)
    assert cli.main(["node", "--datadir", str(tmp_path / "dd")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("poai: error: untested library versions: libp2p 0.8.1 (tested: 0.0.1)")
    assert err.count("\n") == 1 and poai.compat.ALLOW_UNTESTED_ENV in err
    assert not (tmp_path / "dd").exists()  # refused before touching the data dir


def test_accounts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    assert cli.main(["account", "list", "--datadir", str(tmp_path)]) == 0
    assert "no accounts" in capsys.readouterr().out
    assert cli.main(["account", "new", "--datadir", str(tmp_path), "--password-file",
                     str(pw)]) == 0
    address = capsys.readouterr().out.split()[1]
    assert cli.main(["account", "list", "--datadir", str(tmp_path)]) == 0
    assert address in capsys.readouterr().out
    from eth_account import Account
    (keyfile,) = (tmp_path / "keystore").iterdir()
    key = Account.decrypt(json.loads(keyfile.read_text()), "secret")
    assert Account.from_key(key).address == address
    res = run("account", "new", "--datadir", str(tmp_path), "--password-file",
              str(tmp_path / "missing"))
    assert res.returncode == 2 and "password file" in res.stderr


def test_status_unreachable_and_banner() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    res = run("status", "--rpc", f"http://127.0.0.1:{port}")
    assert res.returncode == 2 and "cannot reach a node" in res.stderr
    config = cli._load_config(None)
    text = cli.banner(config, "http://127.0.0.1:8545", True, False, b"\0" * 20)
    assert f"Chain ID:        {config.chain_id}" in text and "POAI" in text
    assert text.count("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80") == 1
    assert "(9) 0x" in text
