"""JSON log lines for CloudWatch Logs. Callers pass UIDs, ids, counts and statuses only: no PHI."""

from __future__ import annotations

import json


def log(event: str, level: str = "INFO", **fields: object) -> None:
    """Log one event as a JSON object on stdout (Lambda sends stdout to CloudWatch Logs)."""
    print(json.dumps({"level": level, "event": event, **fields}, default=str, sort_keys=True))
