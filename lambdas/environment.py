"""The Lambda environment variables the handlers read (docs/CONTRACTS.md, "Import workflow")."""

from __future__ import annotations

import os

from lambdas.errors import ConfigError


def env(name: str, default: str | None = None) -> str:
    """The value of environment variable `name`, or `default`; raise when neither is there."""
    value = os.environ.get(name, default)
    if value is None:
        raise ConfigError(f"set {name} in the function's environment")
    return value


def env_int(name: str, default: int, minimum: int = 0) -> int:
    """An integer environment variable, at least `minimum`."""
    value = env(name, str(default))
    if not value.isdigit() or int(value) < minimum:
        raise ConfigError(f"{name}={value!r}: set a whole number of at least {minimum}")
    return int(value)
