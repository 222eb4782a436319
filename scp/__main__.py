"""`python -m scp` / `storescp-healthimaging`: start the Store SCP."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from scp.settings import SettingsError, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(argv)
    except SettingsError as exc:
        print(f"storescp: error: {exc}", file=sys.stderr)
        return 2
    from scp.app import run
    from scp.telemetry import configure_logging

    configure_logging(settings.log_level)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
