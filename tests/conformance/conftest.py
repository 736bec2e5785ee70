import sys
from pathlib import Path

# The harness modules (ethtests, ethtests_forks) sit beside the tests, as in tests/chain.
sys.path.insert(0, str(Path(__file__).resolve().parent))
