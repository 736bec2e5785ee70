"""The loop both market services run: one `step()` per new head (or per `poll_s`), in a daemon
thread; a step returning True runs the next at once. A `MarketError` is logged once per
distinct message (a missing stake, a banned worker...), anything else with its traceback: the
node serves on and the next head retries."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod

from poai.interfaces import NodeLike
from poai.market.contract import MarketError


class ChainLoop(ABC):
    name = "market"

    def __init__(self, node: NodeLike, poll_s: float) -> None:
        self.node = node
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()
        self.log = logging.getLogger(f"poai.market.{self.name}")

    @abstractmethod
    def step(self) -> bool:
        """One pass over the chain's jobs; True: run the next at once."""

    def start(self) -> None:
        self.node.add_listener(lambda _event: self._wake.set())
        self._thread = threading.Thread(target=self._run, name=f"market-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def warn_once(self, text: str) -> None:
        if text not in self._warned:
            self._warned.add(text)
            self.log.warning("market %s: %s", self.name, text)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.step()
            except MarketError as exc:
                self.warn_once(str(exc))
                busy = False
            except Exception:  # noqa: BLE001 - the node serves on; the next head retries
                self.log.exception("market %s step failed", self.name)
                busy = False
            if not busy:
                self._wake.wait(self.poll_s)
                self._wake.clear()
