"""JSON-RPC 2.0 errors with the codes of the spec and of the Ethereum execution-apis."""

from __future__ import annotations

from typing import Any

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # geth: transaction and execution errors
EXECUTION_REVERTED = 3  # execution-apis: revert, with the revert data in `data`


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


class InvalidParams(RpcError):
    def __init__(self, message: str) -> None:
        super().__init__(INVALID_PARAMS, message)


class MethodNotFound(RpcError):
    def __init__(self, method: str) -> None:
        super().__init__(METHOD_NOT_FOUND,
                         f"the method {method} does not exist/is not available")


class ServerError(RpcError):
    def __init__(self, message: str, data: Any = None) -> None:
        super().__init__(SERVER_ERROR, message, data)


class ExecutionReverted(RpcError):
    def __init__(self, revert_data: bytes) -> None:
        reason = _decode_revert_reason(revert_data)
        message = f"execution reverted: {reason}" if reason else "execution reverted"
        super().__init__(EXECUTION_REVERTED, message, "0x" + revert_data.hex())


def _decode_revert_reason(data: bytes) -> str | None:
    """The string of an `Error(string)` revert (selector 0x08c379a0), as geth shows it."""
    if len(data) < 68 or data[:4] != bytes.fromhex("08c379a0"):
        return None
    try:
        length = int.from_bytes(data[36:68], "big")
        return data[68:68 + length].decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        return None
