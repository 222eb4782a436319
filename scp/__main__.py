"""`python -m scp` / `storescp-healthimaging`: start the Store SCP."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from scp import PROG
from scp.listener import StartupError
from scp.settings import SettingsError, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(argv)
    except SettingsError as exc:
        return _refuse(exc, 2)
    from scp.app import run
    from scp.telemetry import configure_logging

    configure_logging(settings.log_level, settings.log_uids)
    try:
        return run(settings)
    except StartupError as exc:
        return _refuse(exc, 1)


def _refuse(exc: Exception, code: int) -> int:
    """One sentence on stderr, no traceback: what is wrong and what to do."""
    print(f"{PROG}: error: {exc}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
