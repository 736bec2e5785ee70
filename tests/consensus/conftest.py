from __future__ import annotations

import sys
from pathlib import Path

# Shared small quiz assets live beside the chain tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chain"))
