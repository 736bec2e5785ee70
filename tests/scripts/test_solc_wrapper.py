"""scripts/solc-wrapper.js outside the repository (issue 19): py-solc-x's compile_standard and
compile_source, and a Hardhat project in a temporary directory, compile a contract importing
OpenZeppelin; --base-path, --include-path and --allow-paths behave as solc's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import solcx

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "scripts" / "solc-wrapper.js"
BIN = ROOT / "node_modules" / ".bin"

TOKEN = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
import "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import "mylib/Supply.sol";
contract Token is ERC20 {
    constructor() ERC20("Token", "TOK") { _mint(msg.sender, SUPPLY); }
}
"""
SUPPLY = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
uint256 constant SUPPLY = 1000;
"""


@pytest.fixture(autouse=True)
def node_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project outside the repository: contracts/Token.sol, and a library in lib/mylib."""
    assert not tmp_path.is_relative_to(ROOT)
    (tmp_path / "proj" / "contracts").mkdir(parents=True)
    (tmp_path / "proj" / "contracts" / "Token.sol").write_text(TOKEN)
    (tmp_path / "lib" / "mylib").mkdir(parents=True)
    (tmp_path / "lib" / "mylib" / "Supply.sol").write_text(SUPPLY)
    monkeypatch.chdir(tmp_path)  # neither the project nor the repository
    return tmp_path


def test_py_solc_x_compile_standard_and_compile_source(project: Path) -> None:
    proj, lib = project / "proj", project / "lib"
    out = solcx.compile_standard(
        {"language": "Solidity",
         "sources": {"contracts/Token.sol": {"urls": ["contracts/Token.sol"]}},
         "settings": {"evmVersion": "prague", "remappings": [f"mylib/={lib}/mylib/"],
                      "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}}},
        solc_binary=WRAPPER, base_path=proj, allow_paths=[lib])
    assert not [e for e in out.get("errors", []) if e["severity"] == "error"], out["errors"]
    token = out["contracts"]["contracts/Token.sol"]["Token"]
    assert {f["name"] for f in token["abi"] if f["type"] == "function"} >= {"transfer"}
    assert len(token["evm"]["bytecode"]["object"]) > 1000
    # compile_source: --combined-json over stdin; the library comes from --include-path.
    source = (proj / "contracts" / "Token.sol").read_text()
    compiled = solcx.compile_source(source, output_values=["abi", "bin", "bin-runtime"],
                                    solc_binary=WRAPPER, base_path=proj, include_path=lib)
    token = compiled["<stdin>:Token"]
    assert any(f.get("name") == "totalSupply" for f in token["abi"])
    assert len(token["bin"]) > 1000 and len(token["bin-runtime"]) > 1000
    # and the default output list, read from the wrapper's --help as from solc's
    assert "storage-layout" in solcx.main._get_combined_json_outputs(WRAPPER)


def test_allow_paths_and_missing_imports_fail_as_solc(project: Path) -> None:
    proj, lib = project / "proj", project / "lib"
    outside = (proj / "contracts" / "Outside.sol")
    outside.write_text(TOKEN.replace('"mylib/Supply.sol"', f'"{lib}/mylib/Supply.sol"'))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "node"), str(WRAPPER), "--combined-json", "abi",
                               *args], capture_output=True, text=True, timeout=120)

    refused = run("--base-path", str(proj), str(outside))
    assert refused.returncode == 1 and "File outside of allowed directories" in refused.stderr
    allowed = run("--base-path", str(proj), "--allow-paths", str(lib), str(outside))
    assert allowed.returncode == 0, allowed.stderr
    assert "contracts/Outside.sol:Token" in json.loads(allowed.stdout)["contracts"]
    token = str(proj / "contracts" / "Token.sol")
    missing = run("--base-path", str(proj), token)
    assert missing.returncode == 1 and 'Source "mylib/Supply.sol" not found' in missing.stderr
    remapped = run("--base-path", str(proj), f"mylib/={lib}/mylib/", "--allow-paths", str(lib),
                   token)  # a remapping argument, as solc takes it
    assert remapped.returncode == 0, remapped.stderr
    assert run("--combined-json", "nonsense").returncode == 1


HARDHAT_CONFIG = """import { createRequire } from "node:module";
import { defineConfig } from "hardhat/config";
const require = createRequire(import.meta.url);
export default defineConfig({
  solidity: { version: "0.8.37", path: require.resolve("solc/soljson.js"),
              settings: { evmVersion: "prague" } },
});
"""


@pytest.mark.skipif(shutil.which("node", path=str(BIN)) is None, reason="make install first")
def test_hardhat_project_outside_the_repo(project: Path) -> None:
    proj = project / "proj"
    (proj / "contracts" / "Token.sol").write_text(
        TOKEN.replace('import "mylib/Supply.sol";\n', "").replace("SUPPLY", "1000"))
    (proj / "package.json").write_text('{"name": "outside", "private": true, "type": "module"}')
    (proj / "hardhat.config.js").write_text(HARDHAT_CONFIG)
    # What `npm install --save-dev hardhat @openzeppelin/contracts solc` gives a project (the
    # same packages as the repository's, so nothing is downloaded).
    (proj / "node_modules").symlink_to(ROOT / "node_modules")
    res = subprocess.run([str(BIN / "hardhat"), "build"], cwd=proj, capture_output=True,
                         text=True, timeout=240)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    artifact = json.loads((proj / "artifacts" / "contracts" / "Token.sol" / "Token.json")
                          .read_text())
    assert artifact["contractName"] == "Token" and len(artifact["bytecode"]) > 1000
