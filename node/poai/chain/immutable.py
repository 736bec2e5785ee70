"""Copies of rlp objects (headers, blocks, accounts) that share their unchanged fields.

rlp's `Serializable.copy(**changes)` deep-copies every field it is not given, and a deep copy
of a block copies each of its transactions (their `__deepcopy__` is another `copy`).  Those
objects are immutable (rlp refuses attribute writes and freezes lists into tuples) and so are
their field values (bytes, ints, tuples of immutable objects), so a copy may share them:
same object, same encoding, same hash, a fraction of the work.  py-evm's import copies each
block four or five times and each account on every balance or nonce change (measured: a
fifth of importing a block of 500 transfers).
"""

from __future__ import annotations

from typing import Any, TypeVar

import rlp
from rlp.sedes.serializable import make_immutable

from poai.compat.pyevm import rlp_fields

_T = TypeVar("_T", bound=rlp.Serializable)


def _field_names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        layout = rlp_fields(cls)
        if layout is None:
            raise TypeError(f"{cls.__name__} is not an rlp.Serializable")
        names = _NAMES[cls] = layout[0]
    return names


_NAMES: dict[type, tuple[str, ...]] = {}


def fields_of(obj: rlp.Serializable) -> dict[str, Any]:
    """An rlp object's fields by name: the values themselves, not copies."""
    return {name: getattr(obj, name) for name in _field_names(type(obj))}


def replace(obj: _T, **changes: Any) -> _T:
    """``obj.copy(**changes)`` that shares the unchanged (immutable) field values."""
    fields = fields_of(obj)
    unknown = changes.keys() - fields.keys()
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no fields {sorted(unknown)}")
    fields.update(changes)
    new: _T = type(obj)(**fields)
    return new


def _field_attrs(cls: type) -> dict[str, str]:
    attrs = _ATTRS.get(cls)
    if attrs is None:
        layout = rlp_fields(cls)
        if layout is None:
            raise TypeError(f"{cls.__name__} is not an rlp.Serializable")
        attrs = _ATTRS[cls] = dict(zip(layout[0], layout[1], strict=True))
    return attrs


_ATTRS: dict[type, dict[str, str]] = {}


def replace_fields(obj: _T, **changes: Any) -> _T:
    """`replace` without running the class's ``__init__``: for rlp classes whose instances hold
    nothing but their fields (headers, accounts; a test checks py-evm's), where the per-call
    cost is all keyword merging.  py-evm copies the header once per transaction of a block
    (gas used, bloom) and an account on every balance or nonce change."""
    cls = type(obj)
    attrs = _field_attrs(cls)
    src = obj.__dict__
    new = object.__new__(cls)
    state = new.__dict__
    for attr in attrs.values():  # the fields only: not rlp's or py-evm's caches
        state[attr] = src[attr]
    for name, value in changes.items():
        changed = attrs.get(name)
        if changed is None:
            raise TypeError(f"{cls.__name__} has no fields {[name]}")
        state[changed] = value if type(value) in _ATOMS else make_immutable(value)
    return new


_ATOMS = (int, bytes)


def build_fields(cls: type[_T], **fields: Any) -> _T:
    """``cls(**fields)`` with every field given, for the same classes as `replace_fields`
    (instances that hold nothing but their fields): no keyword merging or ``__init__``."""
    attrs = _field_attrs(cls)
    if fields.keys() != attrs.keys():
        raise TypeError(f"{cls.__name__} needs exactly the fields {sorted(attrs)}")
    new = object.__new__(cls)
    state = new.__dict__
    for name, value in fields.items():
        state[attrs[name]] = value if type(value) in _ATOMS else make_immutable(value)
    return new


class SharedCopy:
    """Mixin for an rlp.Serializable subclass: `copy` shares unchanged fields, and so do its
    copies and deep copies (new objects, as rlp makes them: py-evm's blocks carry a mutable
    non-field attribute, `block_requests`, that each new block starts empty)."""

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        names = _field_names(type(self))
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} fields")
        positional = dict(zip(names, args, strict=False))
        clash = positional.keys() & kwargs.keys()
        if clash:
            raise TypeError(f"{type(self).__name__}: fields given twice: {sorted(clash)}")
        return replace(self, **positional, **kwargs)

    def __copy__(self) -> Any:
        return self.copy()

    def __deepcopy__(self, memo: Any) -> Any:
        return self.copy()


__all__ = ["SharedCopy", "build_fields", "fields_of", "replace", "replace_fields"]
