"""Imports for the Python-side contract tests: migrations/ and bindings/python/ are script dirs."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for sub in ("migrations", "bindings/python", "scripts", "tests/integration"):
    path = str(ROOT / sub)
    if path not in sys.path:
        sys.path.insert(0, path)
