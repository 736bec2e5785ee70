from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from poai.model.blobs import EXPERT_PARAMS, expert_key
from poai.model.commands import main
from poai.model.expert_train import ExpertTrainError, routed_loss, settings_for, train_expert
from poai.model.genesis import VALIDATION_TEXT, genesis_manifest_hash, genesis_store
from poai.model.snapshot import assemble_model, read_manifest
from poai.model.store import BlobStore
from poai.model.train import TrainSettings, byte_tensor, eval_windows
from transformers import MixtralForCausalLM

TEXT = "the quick brown fox jumps over the lazy dog. " * 200


def test_only_the_slot_moves(tiny_model: MixtralForCausalLM) -> None:
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    train_expert(tiny_model, byte_tensor(TEXT), 1, 2, settings_for(4, 1e-2, 4, 0))
    after = tiny_model.state_dict()
    for name, old in before.items():
        if name in {expert_key(1, p) for p in EXPERT_PARAMS}:
            assert not torch.equal(old[2], after[name][2]), name
            for e in (0, 1, 3):
                assert torch.equal(old[e], after[name][e]), (name, e)
        else:
            assert torch.equal(old, after[name]), name


def test_weight_decay_and_bad_slots_are_refused(tiny_model: MixtralForCausalLM) -> None:
    with pytest.raises(ExpertTrainError, match="weight decay"):
        train_expert(tiny_model, byte_tensor(TEXT), 0, 0, TrainSettings(steps=1))
    with pytest.raises(ExpertTrainError, match="layer 2 does not exist"):
        train_expert(tiny_model, byte_tensor(TEXT), 2, 0, settings_for(1, 1e-3, 2, 0))
    with pytest.raises(ExpertTrainError, match="expert 4 does not exist"):
        train_expert(tiny_model, byte_tensor(TEXT), 0, 4, settings_for(1, 1e-3, 2, 0))


def test_routed_loss_covers_the_routed_tokens(tiny_model: MixtralForCausalLM) -> None:
    windows = eval_windows(byte_tensor(TEXT), 32, 8)
    r = routed_loss(tiny_model, windows, 0, 1)
    assert r.tokens == 8 * 32
    assert 0 < r.routed_tokens <= r.tokens
    # top-2 of 4 experts: the four experts' routed counts add up to twice the tokens
    counts = sum(routed_loss(tiny_model, windows, 0, e).routed_tokens for e in range(4))
    assert counts == 2 * r.tokens


def test_cli_trains_one_genesis_expert(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    data = tmp_path / "train.txt"
    data.write_text(VALIDATION_TEXT.read_text()[:20000])
    out = tmp_path / "expert.safetensors"
    rc = main(["expert", "train", "--layer", "2", "--expert", "5", "--data", str(data),
               "--steps", "3", "--batch-size", "4", "--lr", "1e-2", "--eval-windows", "16",
               "--datadir", str(tmp_path / "dd"), "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "step     3/3" in captured.err and "left" in captured.err
    result = json.loads(captured.out)
    store = BlobStore(tmp_path / "dd" / "blobs")
    assert out.read_bytes() == store.get(result["blob"])
    v = result["validation"]
    assert v["tokens"] == 16 * 64 and 0 < v["routed_tokens"] < v["tokens"]
    assert v["overall_before"] != v["overall_after"]

    base = read_manifest(genesis_store(), genesis_manifest_hash())
    cand = read_manifest(store, result["snapshot"])
    assert cand.trunk == base.trunk
    for layer, row in enumerate(base.experts):
        for e, h in enumerate(row):
            assert (cand.experts[layer][e] == h) == ((layer, e) != (2, 5))
    # every other tensor and slice bit-identical in the assembled models
    old = assemble_model(genesis_store(), genesis_manifest_hash()).state_dict()
    new = assemble_model(store, result["snapshot"]).state_dict()
    for name, t in old.items():
        if name in {expert_key(2, p) for p in EXPERT_PARAMS}:
            keep = [e for e in range(8) if e != 5]
            assert torch.equal(t[keep], new[name][keep])
            assert not torch.equal(t[5], new[name][5])
        else:
            assert torch.equal(t, new[name]), name


@pytest.mark.parametrize(("args", "message"), [
    (["--layer", "4", "--expert", "0"], "layer 4 does not exist"),
    (["--layer", "0", "--expert", "8"], "expert 8 does not exist"),
    (["--layer", "0", "--expert", "0", "--data", "EMPTY"], "is empty"),
    (["--layer", "0", "--expert", "0", "--data", "MISSING"], "No such file"),
    (["--layer", "0", "--expert", "0", "--snapshot", "abc"], "not a lowercase hex sha256"),
    (["--layer", "0", "--expert", "0", "--snapshot", "ab" * 32], "missing from store"),
])
def test_cli_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   args: list[str], message: str) -> None:
    (tmp_path / "EMPTY").write_text("\n")
    args = [str(tmp_path / a) if a in ("EMPTY", "MISSING") else a for a in args]
    rc = main(["expert", "train", *args, "--steps", "1", "--datadir", str(tmp_path / "dd")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not (tmp_path / "dd" / "blobs").exists()
