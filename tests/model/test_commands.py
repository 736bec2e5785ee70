from __future__ import annotations

import json
from pathlib import Path

import pytest
from poai.model.commands import main
from poai.model.dataset import EncryptedDataset

KEY_HEX = "11" * 32


def test_dataset_build_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.txt"
    src.write_text("hello quiz world " * 30)
    out = tmp_path / "out.poaids"
    assert main(["dataset", "build", "--input", str(src), "--out", str(out),
                 "--key", KEY_HEX, "--sample-len", "32"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with EncryptedDataset.open(out, bytes.fromhex(KEY_HEX), expected_sha256=printed["sha256"]) \
            as ds:
        assert len(ds) == len(src.read_bytes()) // 32
    key_file = tmp_path / "key"
    key_file.write_text("0x" + KEY_HEX + "\n")
    out2 = tmp_path / "out2.poaids"
    assert main(["dataset", "build", "--input", str(src), "--out", str(out2),
                 "--key-file", str(key_file), "--sample-len", "32"]) == 0
    assert out2.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("key_args, message", [
    ([], "key is required"),
    (["--key", "zz" * 32], "not hex"),
    (["--key", "11" * 16], "32 bytes"),
])
def test_dataset_build_cli_rejects_bad_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            key_args: list[str], message: str) -> None:
    src = tmp_path / "in.txt"
    src.write_text("x" * 100)
    assert main(["dataset", "build", "--input", str(src), "--out", str(tmp_path / "o"),
                 *key_args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_dataset_build_cli_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    assert main(["dataset", "build", "--input", str(tmp_path / "absent.txt"),
                 "--out", str(tmp_path / "o"), "--key", KEY_HEX]) == 2
    assert "absent.txt" in capsys.readouterr().err


@pytest.mark.slow  # ~30 s: builds the corpus, trains 2 steps, writes every asset
def test_build_genesis_cli_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole genesis path with 2 training steps, into a scratch assets directory."""
    from poai.model.snapshot import load_model
    from poai.model.store import BlobStore

    assert main(["model", "build-genesis", "--assets-dir", str(tmp_path), "--steps", "2"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    h = (tmp_path / "model" / "MANIFEST").read_text().strip()
    assert out["model"]["manifest"] == h
    load_model(BlobStore(tmp_path / "model"), h)
    info = json.loads((tmp_path / "dataset" / "GENESIS.json").read_text())
    with EncryptedDataset.open(tmp_path / "dataset" / "genesis.poaids",
                               bytes.fromhex(info["key"]), expected_sha256=info["sha256"]) as ds:
        assert len(ds) == info["records"]
    assert (tmp_path / "corpus" / "validation.txt").stat().st_size > 10_000
