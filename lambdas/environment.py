"""The Lambda environment variables the handlers read (docs/CONTRACTS.md, "Import workflow")."""

from __future__ import annotations

import os

from lambdas.errors import ConfigError


def env(name: str, default: str | None = None) -> str:
    """The value of environment variable `name`, or `default`; raise when neither is there."""
    value = os.environ.get(name, default)
    if value is None:
        raise ConfigError(f"environment variable {name} is not set; set it on the Lambda function")
    return value


def env_int(name: str, default: int) -> int:
    """An integer environment variable."""
    value = env(name, str(default))
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from exc
