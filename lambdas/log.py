"""JSON log lines for CloudWatch Logs. Callers pass UIDs, ids, counts and statuses only: no PHI."""

from __future__ import annotations

import json
import logging
import os

logger = logging.getLogger("lambdas")
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())


def log(event: str, level: int = logging.INFO, **fields: object) -> None:
    """Log one event as a JSON object."""
    logger.log(level, json.dumps({"event": event, **fields}, default=str, sort_keys=True))
