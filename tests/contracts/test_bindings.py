"""bindings/ must match contracts/: fails when someone edits a .sol file without regenerating
(`.venv/bin/python scripts/gen_bindings.py`)."""

import json

import gen_bindings
import poai_bindings


def test_bindings_are_fresh() -> None:
    assert gen_bindings.stale_reasons() == [], "run: .venv/bin/python scripts/gen_bindings.py"


def test_staleness_is_detected(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    for src in gen_bindings.source_files():
        dst = contracts / src.relative_to(gen_bindings.CONTRACTS)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(src.read_text())
    (tmp_path / "node_modules").symlink_to(gen_bindings.ROOT / "node_modules")
    monkeypatch.setattr(gen_bindings, "CONTRACTS", contracts)
    monkeypatch.setattr(gen_bindings, "ROOT", tmp_path)
    base = gen_bindings.source_hash()
    (contracts / "registry" / "ModelRegistry.sol").write_text(
        (contracts / "registry" / "ModelRegistry.sol").read_text() + "\n// edit\n"
    )
    assert gen_bindings.source_hash() != base
    # and the checked-in artifacts, built from the real sources, now read as stale
    monkeypatch.setattr(gen_bindings, "ABI_DIR", gen_bindings.ABI_DIR)
    assert any("sourceHash differs" in r for r in gen_bindings.stale_reasons())


def test_every_contract_has_abi_and_bytecode() -> None:
    for name in gen_bindings.DEPLOYABLE:
        art = json.loads((gen_bindings.ABI_DIR / f"{name}.json").read_text())
        assert art["abi"] and len(art["bytecode"]) > 1000 and len(art["deployedBytecode"]) > 1000
        assert hasattr(poai_bindings, name)


def test_typed_methods_exist() -> None:
    assert poai_bindings.ModelRegistry.activeSnapshot.__annotations__["return"] == "int"
    assert poai_bindings.DatasetDAO.revealKey.__annotations__["key"] == "bytes"
