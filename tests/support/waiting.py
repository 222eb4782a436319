"""Waiting for what a process does in its own time (a log line, a freed slot), never sleeping a
fixed time that a loaded machine can outlast."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(condition: Callable[[], Any], timeout: float = 10.0) -> bool:
    """Poll condition() until it is truthy (True) or timeout seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
