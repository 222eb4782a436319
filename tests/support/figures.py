"""Figures tests measure (sizes, counts, seconds), printed in one section at the end of the run.

Under xdist each worker hands its figures to the controller (tests/conftest.py), since a
worker's own output is not shown.
"""

from __future__ import annotations

FIGURES: list[str] = []


def report_figure(line: str) -> None:
    """Record a figure for the 'figures' section at the end of the run."""
    FIGURES.append(line)
