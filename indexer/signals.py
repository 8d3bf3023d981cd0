"""on_stop: turn SIGINT/SIGTERM into a call that only sets a flag, for a clean exit.

The first signal asks the loop to finish its batch and return; a second one restores the
previous handlers' behaviour by raising KeyboardInterrupt / SystemExit at once. Handlers are
restored when the block exits (huey, procrastinate).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def on_stop(stop: Callable[[], None], *, install: bool = True) -> Iterator[None]:
    """Call ``stop()`` on the first SIGINT/SIGTERM while the block runs; exit on a second."""
    if not install or threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handle(signum: int, _frame: Any) -> None:
        if received:
            raise SystemExit(128 + signum)
        received.append(signum)
        stop()

    previous = {sig: signal.signal(sig, handle) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
