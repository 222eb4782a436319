"""The first body part of a multipart/related response (PS3.18 8.7.1.2), or the body itself when
the response is a single part."""

from __future__ import annotations

import re

BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


def first_part(content_type: str, body: bytes) -> bytes:
    """The payload of the first part of `body`; `body` when it is not multipart."""
    if not content_type.lower().startswith("multipart/"):
        return body
    found = BOUNDARY.search(content_type)
    if not found:
        raise ValueError(f"multipart response without a boundary: {content_type!r}")
    delimiter = b"--" + found.group(1).encode()
    parts = body.split(delimiter)
    if len(parts) < 3:
        raise ValueError("multipart response without a complete part")
    _, _, payload = parts[1].partition(b"\r\n\r\n")
    return payload[:-2] if payload.endswith(b"\r\n") else payload
