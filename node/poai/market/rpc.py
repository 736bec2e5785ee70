"""JSON-RPC `poai_job` and `poai_jobs`: the market's jobs with their prompts and answers.

`poai_job(id)` -> one job (`null` for an id never posted); `poai_jobs({status, buyer, worker,
fromId, limit})` -> jobs oldest first (every field optional; `limit` at most 1000). Both read the
node's own chain (contract state at the head joined with the jobs' event data).
"""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address

from poai.market.book import JobBook
from poai.market.contract import STATUS_WORDS, MarketError, Status
from poai.rpc.errors import InvalidParams
from poai.rpc.hexutil import parse_address, parse_qty
from poai.rpc.params import QTY, Arg

MAX_JOBS = 1000
_STATUS_BY_WORD = {w: s for s, w in STATUS_WORDS.items() if s != Status.NONE}
_FILTER_KEYS = {"status", "buyer", "worker", "fromId", "limit"}


def _jobs_filter(value: Any, name: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise InvalidParams(f"invalid {name}: expected an object")
    unknown = set(value) - _FILTER_KEYS
    if unknown:
        raise InvalidParams(f"invalid {name}: unknown field(s) {sorted(unknown)} "
                            f"(known: {sorted(_FILTER_KEYS)})")
    status = value.get("status")
    if status is not None and status not in _STATUS_BY_WORD:
        raise InvalidParams(f"invalid {name}.status: {status!r} (one of "
                            f"{', '.join(_STATUS_BY_WORD)})")
    for key in ("buyer", "worker"):
        if value.get(key) is not None:
            parse_address(value[key], f"{name}.{key}")
    for key in ("fromId", "limit"):
        if value.get(key) is not None:
            parse_qty(value[key], f"{name}.{key}")
    if value.get("limit") is not None and not 1 <= parse_qty(value["limit"]) <= MAX_JOBS:
        raise InvalidParams(f"invalid {name}.limit: must be 1..{MAX_JOBS}")


class MarketRpc:
    def __init__(self, book: JobBook) -> None:
        self.book = book

    def job(self, ctx: Any, params: list[Any]) -> dict[str, Any] | None:
        job_id = parse_qty(params[0], "id")
        self.book.refresh()
        try:
            job = self.book.job(job_id)
        except MarketError:
            return None
        return job.to_json(self.book.params().challenge_window)

    def jobs(self, ctx: Any, params: list[Any]) -> list[dict[str, Any]]:
        f = (params[0] if params else None) or {}
        statuses: set[Status] | None = {_STATUS_BY_WORD[f["status"]]} if f.get("status") \
            else None
        buyer = parse_address(f["buyer"]) if f.get("buyer") else None
        worker = parse_address(f["worker"]) if f.get("worker") else None
        limit = parse_qty(f["limit"]) if f.get("limit") is not None else 100
        since = parse_qty(f["fromId"]) if f.get("fromId") is not None else 1
        self.book.refresh()
        window = self.book.params().challenge_window
        out = []
        for job in self.book.jobs(statuses=statuses, since=since):
            if buyer is not None and job.buyer != buyer:
                continue
            if worker is not None and job.worker != worker:
                continue
            out.append(job.to_json(window))
            if len(out) >= limit:
                break
        return out

    def methods(self) -> dict[str, Any]:
        return {"poai_job": self.job, "poai_jobs": self.jobs}

    @staticmethod
    def params() -> dict[str, tuple[Arg, ...]]:
        return {"poai_job": (Arg("id", QTY),),
                "poai_jobs": (Arg("filter", _jobs_filter, optional=True),)}


def address_text(raw: bytes) -> str:
    return to_checksum_address(raw)
