"""A web3 contract with named results and reverts in words, built from any ABI at run time.

Nothing here is generated per function: the ABI JSON is read when a contract is bound, so a
contract whose ABI is regenerated (new functions, new structs, new errors) just works.

- a view function is called at once: ``registry.expert(1)`` returns ``Expert(name=..., ...)``
  (a NamedTuple, so index and unpacking still work); several outputs come back as a NamedTuple of
  the output names, ``<function>Result``;
- any other function returns a `BoundFunction` for ``.transact({...})``,
  ``.build_transaction({...})`` or ``.estimate_gas({...})``;
- a revert raises `ContractRevert`, whose text names the error and its arguments.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from eth_utils.abi import collapse_if_tuple
from web3 import Web3
from web3.exceptions import ContractLogicError

from poai.bindings.errors import DecodedRevert, ErrorTable, decode_revert_data, revert_data_of

VIEW_MUTABILITY = ("view", "pure")


class ContractRevert(ContractLogicError):
    """A call or transaction reverted. ``revert`` is the decoded revert (``revert.name``,
    ``revert.args`` by argument name); ``str()`` is one line: ``Contract.fn: Error(arg=..)``.
    A web3 ContractLogicError, so code catching web3's errors keeps working."""

    def __init__(self, where: str, revert: DecodedRevert) -> None:
        super().__init__(f"{where}: {revert}", "0x" + revert.data.hex())
        self.where = where
        self.revert = revert

    def __str__(self) -> str:
        return str(self.message)


def _field(name: str, i: int) -> str:
    name = re.sub(r"\W", "_", name) if name else f"field{i}"
    if name.startswith("_"):
        name = name.lstrip("_") or f"field{i}"  # NamedTuple forbids a leading underscore
    return name + "_" if keyword.iskeyword(name) or name[0].isdigit() else name


@lru_cache(maxsize=512)
def _tuple_class(type_name: str, fields: tuple[str, ...]) -> type[Any]:
    cls: type[Any] = NamedTuple(type_name, [(f, Any) for f in fields])  # type: ignore[misc]
    return cls


def _struct_name(param: Mapping[str, Any], fallback: str) -> str:
    internal = str(param.get("internalType", ""))
    match = re.match(r"struct\s+(?:[\w]+\.)?(\w+)", internal)
    return match.group(1) if match else fallback


def name_value(value: Any, param: Mapping[str, Any]) -> Any:
    """``value`` as web3 decoded it for ABI parameter ``param``, with structs as NamedTuples
    (nested structs and arrays of structs too)."""
    abi_type = str(param["type"])
    if abi_type.endswith("]"):
        inner = dict(param)
        inner["type"] = abi_type[: abi_type.rindex("[")]
        internal = str(param.get("internalType", ""))
        if internal.endswith("]"):
            inner["internalType"] = internal[: internal.rindex("[")]
        return [name_value(v, inner) for v in value]
    if abi_type == "tuple":
        components = param.get("components", [])
        fields = tuple(_field(str(c.get("name", "")), i) for i, c in enumerate(components))
        if len(set(fields)) != len(fields):
            return tuple(name_value(v, c) for v, c in zip(value, components, strict=True))
        cls = _tuple_class(_struct_name(param, "Struct"), fields)
        return cls(*(name_value(v, c) for v, c in zip(value, components, strict=True)))
    return value


def name_outputs(value: Any, fn_abi: Mapping[str, Any]) -> Any:
    """A call's result as web3 returned it, named after the function's outputs."""
    outputs: Sequence[Mapping[str, Any]] = fn_abi.get("outputs", [])
    if len(outputs) == 0:
        return None
    if len(outputs) == 1:
        return name_value(value, outputs[0])
    values = [name_value(v, o) for v, o in zip(value, outputs, strict=True)]
    fields = tuple(_field(str(o.get("name", "")), i) for i, o in enumerate(outputs))
    if not all(o.get("name") for o in outputs) or len(set(fields)) != len(fields):
        return tuple(values)
    cls = _tuple_class(f"{fn_abi['name']}Result", fields)
    return cls(*values)


class BoundFunction:
    """A web3 ContractFunction with its arguments, whose reverts come back in words."""

    def __init__(self, owner: Contract, fn: Any) -> None:
        self._owner = owner
        self._fn = fn
        self.abi: dict[str, Any] = dict(fn.abi)

    @property
    def where(self) -> str:
        types = ",".join(collapse_if_tuple(dict(p)) for p in self.abi.get("inputs", []))
        return f"{self._owner.contract_name}.{self.abi['name']}({types})"

    def _guard(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._fn, method)(*args, **kwargs)
        except ContractLogicError as exc:
            raise self._owner.revert_error(self.where, exc) from None

    def call(self, transaction: dict[str, Any] | None = None,
             block_identifier: Any = "latest") -> Any:
        """eth_call, the result named after the outputs."""
        raw = self._guard("call", transaction, block_identifier=block_identifier)
        return name_outputs(raw, self.abi)

    def build_transaction(self, transaction: dict[str, Any] | None = None) -> dict[str, Any]:
        return dict(self._guard("build_transaction", transaction))

    def estimate_gas(self, transaction: dict[str, Any] | None = None) -> int:
        return int(self._guard("estimate_gas", transaction))

    def transact(self, transaction: dict[str, Any] | None = None) -> bytes:
        return bytes(self._guard("transact", transaction))

    def __getattr__(self, name: str) -> Any:  # the rest of web3's ContractFunction
        return getattr(self._fn, name)


class Contract:
    """One deployed contract: ``Contract(w3, "ModelRegistry", address, abi)``.

    Contract functions are attributes (``c.expertCount()``); ``c.fn(name, *args)`` reaches one
    whose name collides with an attribute here. ``c.web3`` is the plain web3 contract."""

    def __init__(self, w3: Web3, contract_name: str, address: str | bytes,
                 abi: list[dict[str, Any]], errors: ErrorTable | None = None) -> None:
        self.w3 = w3
        self.contract_name = contract_name
        self.address = Web3.to_checksum_address(address)
        self.abi = abi
        self.web3 = w3.eth.contract(address=self.address, abi=abi)
        self._errors = errors if errors is not None else ErrorTable([abi])
        self._functions = {str(e["name"]) for e in abi if e.get("type") == "function"}

    def revert_error(self, where: str, exc: ContractLogicError) -> ContractRevert:
        data = revert_data_of(exc)
        if data is None:  # a node that gave no revert data: keep its message
            return ContractRevert(where, DecodedRevert("error", "Error",
                                                       {"reason": str(exc.message or exc)}))
        return ContractRevert(where, decode_revert_data(data, self._errors))

    def decode_revert(self, data: bytes) -> DecodedRevert:
        return decode_revert_data(data, self._errors)

    def fn(self, name: str, *args: Any) -> BoundFunction:
        if name not in self._functions:
            raise AttributeError(f"{self.contract_name} has no function {name!r}")
        try:
            web3_fn = getattr(self.web3.functions, name)(*args)
        except ContractLogicError as exc:  # pragma: no cover - web3 calls nothing here
            raise self.revert_error(f"{self.contract_name}.{name}", exc) from None
        return BoundFunction(self, web3_fn)

    def call(self, name: str, *args: Any, block_identifier: Any = "latest") -> Any:
        return self.fn(name, *args).call(block_identifier=block_identifier)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self.__dict__.get("_functions", ()):
            raise AttributeError(name)

        def method(*args: Any) -> Any:
            bound = self.fn(name, *args)
            if bound.abi.get("stateMutability") in VIEW_MUTABILITY:
                return bound.call()
            return bound

        method.__name__ = name
        return method

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | self._functions)

    def __repr__(self) -> str:
        return f"<{self.contract_name} at {self.address}>"
