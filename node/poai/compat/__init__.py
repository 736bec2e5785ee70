"""Where PoAI reaches inside its libraries, one module per library.

Every rebinding of a library attribute and every use of a library's private name lives in
`poai.compat.<library>`; the rest of the node calls the small functions those modules give.
`TESTED_VERSIONS` below pins the versions all of that was written and tested against; each
module lists the names it relies on (`RELIES_ON`), and tests/compat checks that every such
name still exists with the recorded signature, so an upgrade fails there first.

Nothing here runs on import: the node start path (the CLI, `Node.start`, benchmarks) calls
`check_versions()` and each library's `install()` explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata

ALLOW_UNTESTED_ENV = "POAI_ALLOW_UNTESTED_LIBS"

# The libraries whose internals a compat module uses (as pinned in constraints.txt; torch is
# the local CPU wheel, 2.13.0+cpu).  Bump one only after tests/compat passes against it.
TESTED_VERSIONS: dict[str, str] = {
    "py-evm": "0.12.1b1",  # compat.pyevm
    "trie": "4.0.0",  # compat.pyevm (py-evm's tries)
    "rlp": "5.0.0",  # compat.pyevm (py-evm's objects)
    "libp2p": "0.8.1",  # compat.libp2p
    "transformers": "5.23.0",  # compat.transformers
    "torch": "2.13.0",  # the quiz's kernels, with transformers
}


@dataclass(frozen=True)
class Reliance:
    """A library name PoAI uses beyond the library's public API.

    `name` is ``module:Qual.name``.  `signature` is the parameter list without annotations
    (``(self, address, from_journal=True)``) for a callable, None for a class attribute that
    is not callable; `instance_attr` marks an attribute the class's ``__init__`` (or another
    of its methods) assigns on ``self``."""

    name: str
    signature: str | None = None
    instance_attr: bool = False


class UntestedLibrary(RuntimeError):
    """An installed library version this node was not tested with."""


def _release(version: str) -> str:
    """'2.13.0+cpu' -> '2.13.0': a local build tag does not change the code."""
    return version.split("+", 1)[0]


def untested_versions(tested: Mapping[str, str]) -> list[str]:
    """One phrase per installed distribution whose version differs from `tested`."""
    out = []
    for dist, want in tested.items():
        try:
            have = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out.append(f"{dist} is not installed (tested: {want})")
            continue
        if _release(have) != _release(want):
            out.append(f"{dist} {have} (tested: {want})")
    return out


def check_versions(allow_untested: bool | None = None) -> None:
    """Raise UntestedLibrary (one line) unless every library PoAI patches or reaches into is
    the version it was tested with; `allow_untested` (default: the POAI_ALLOW_UNTESTED_LIBS
    environment variable set to 1) turns the refusal off."""
    if allow_untested is None:
        allow_untested = os.environ.get(ALLOW_UNTESTED_ENV, "") == "1"
    if allow_untested:
        return
    problems = untested_versions(TESTED_VERSIONS)
    if problems:
        raise UntestedLibrary(
            "untested library versions: " + "; ".join(problems)
            + " (install the pinned ones: pip install -c constraints.txt -e '.[dev]'; "
            + f"or set {ALLOW_UNTESTED_ENV}=1 to try them)")


__all__ = [
    "ALLOW_UNTESTED_ENV", "TESTED_VERSIONS", "Reliance", "UntestedLibrary", "check_versions",
    "untested_versions",
]
