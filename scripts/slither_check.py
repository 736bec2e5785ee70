"""Slither over contracts/, offline: crytic-compile's standard-JSON mode through
scripts/solc-wrapper.js (npm solc). Prints high/medium findings in our code (not OpenZeppelin's)
as JSON lines {check, impact, description}; tests/contracts/test_slither.py calls `analyse()`.
Run: PATH=$PWD/node_modules/.bin:$PATH .venv/bin/python scripts/slither_check.py
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def analyse() -> tuple[list[str], list[dict[str, Any]]]:
    """(names of our contracts slither parsed, high/medium findings in our code)."""
    from crytic_compile import CryticCompile
    from crytic_compile.platform.solc_standard_json import SolcStandardJson
    from slither import Slither
    from slither.detectors import all_detectors
    from slither.detectors.abstract_detector import AbstractDetector, DetectorClassification

    os.chdir(ROOT)
    with tempfile.TemporaryDirectory() as tmp:
        # crytic-compile runs `solc --standard-json` from PATH: point that name at the wrapper.
        solc = Path(tmp) / "solc"
        solc.symlink_to(ROOT / "scripts" / "solc-wrapper.js")
        os.environ["PATH"] = f"{tmp}:{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}"
        target = SolcStandardJson()
        target.add_source_files(
            [str(p.relative_to(ROOT)) for p in sorted((ROOT / "contracts").rglob("*.sol"))]
        )
        cc = CryticCompile(
            target, solc=str(solc), solc_remaps="@openzeppelin/=node_modules/@openzeppelin/"
        )
        sl = Slither(cc, filter_paths="node_modules")
    for d in vars(all_detectors).values():
        if (
            inspect.isclass(d)
            and issubclass(d, AbstractDetector)
            and d.IMPACT in (DetectorClassification.HIGH, DetectorClassification.MEDIUM)
        ):
            sl.register_detector(d)
    out = []
    for results in sl.run_detectors():
        for r in results:
            out.append(
                {
                    "check": r["check"],
                    "impact": r["impact"],
                    "description": r["description"].strip(),
                }
            )
    ours = sorted(
        {
            c.name
            for c in sl.contracts
            if c.source_mapping.filename.relative.startswith("contracts/")
        }
    )
    return ours, out


def findings() -> list[dict[str, Any]]:
    return analyse()[1]


if __name__ == "__main__":
    for f in findings():
        print(json.dumps(f))
