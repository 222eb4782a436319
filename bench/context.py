"""What a reader needs to compare one benchmark report with another: when, on what machine,
with which versions of the peers."""

from __future__ import annotations

import platform
import subprocess
import time

import psutil


def tool_version(command: list[str]) -> str:
    """The first line a tool prints for `command` (its --version), or why there is none."""
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "not installed"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def machine() -> str:
    """Cores, memory, kernel and Python of this machine."""
    return (
        f"{psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
