"""Build the genesis assets: corpus -> trained genesis model blobs + MANIFEST, genesis dataset.

Usage: ETH_HASH_BACKEND=pysha3 .venv/bin/python scripts/build_genesis.py [--steps N]

Corpus: docstrings of the CPython 3.11 standard library (PSF License v2, redistributable; see
node/poai/assets/corpus/README.md). Single-threaded, a few minutes. The committed blobs are
the source of truth; rerunning produces a new model and a new manifest hash.
"""

from __future__ import annotations

import logging
import sys

from poai.model.commands import main

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main(["model", "build-genesis", *sys.argv[1:]]))
