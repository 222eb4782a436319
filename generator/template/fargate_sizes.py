"""The task CPU and memory pairs Fargate accepts: AWS's published table, as data.

Source: Amazon ECS developer guide, "Troubleshoot Amazon ECS task definition invalid CPU or memory
errors" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html),
the same table as the task definition parameters page ("Task size") and the ECS API reference's
TaskDefinition `memory`: CPU units -> memory in MiB (1 GB = 1024 MiB). 8192 and 16384 CPU need
Linux platform version 1.4.0 or later. Any other pair fails RegisterTaskDefinition ("Invalid 'cpu'
setting for task" / "No Fargate configuration exists for given values").
"""

from __future__ import annotations

import itertools

GIB = 1024


def _gib(*values: int) -> tuple[int, ...]:
    return tuple(v * GIB for v in values)


def _between(low_gib: int, high_gib: int, step_gib: int) -> tuple[int, ...]:
    """ "Between low GB and high GB in increments of step GB", in MiB."""
    return _gib(*range(low_gib, high_gib + 1, step_gib))


TASK_MEMORY_MIB: dict[int, tuple[int, ...]] = {
    256: (512, *_gib(1, 2)),  # 512 MiB, 1 GB, 2 GB
    512: _gib(1, 2, 3, 4),
    1024: _gib(2, 3, 4, 5, 6, 7, 8),
    2048: _between(4, 16, 1),
    4096: _between(8, 30, 1),
    8192: _between(16, 60, 4),
    16384: _between(32, 120, 8),
}


def describe(memory: tuple[int, ...]) -> str:
    """The memory values in words: "512, 1024 or 2048 MiB", or "4096-16384 MiB in steps of 1024"
    for a longer evenly stepped range."""
    steps = {b - a for a, b in itertools.pairwise(memory)}
    if len(memory) > 4 and len(steps) == 1:
        return f"{memory[0]}-{memory[-1]} MiB in steps of {steps.pop()}"
    return f"{', '.join(map(str, memory[:-1]))} or {memory[-1]} MiB"
