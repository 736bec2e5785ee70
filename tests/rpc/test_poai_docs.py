"""Every `poai_*` JSON-RPC method the node serves is documented in docs/RPC.md with an example
request (issue 19). Method names are found in the source, so a new one fails here until
documented."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
METHOD = re.compile(r"^poai_[a-z][A-Za-z]+$")


def served_poai_methods() -> set[str]:
    names = set()
    for path in (ROOT / "node" / "poai").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and METHOD.match(node.value):
                names.add(node.value)
    return names


def test_every_poai_method_has_a_section_with_an_example() -> None:
    from poai.rpc.poai import METHODS

    methods = served_poai_methods()
    assert set(METHODS) <= methods and "poai_expertStats" in methods  # the scan finds them
    doc = (ROOT / "docs" / "RPC.md").read_text()
    sections = dict(re.findall(r"^## (poai_\w+)\n(.*?)(?=^## |\Z)", doc, re.M | re.S))
    missing = sorted(methods - set(sections))
    assert not missing, f"document in docs/RPC.md: {missing}"
    for name in methods:
        example = f'"method":"{name}"'
        assert example in sections[name].replace(" ", ""), f"{name}: no example request"
        assert '"result":' in sections[name], f"{name}: no example answer"
