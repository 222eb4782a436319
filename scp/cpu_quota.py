"""How many CPUs this process may really use: affinity, cgroup v1 or v2 quota, ECS task limit.

Fargate sizes 256 and 512 are a quarter and half of a core on a host that shows two or more, so
counting CPUs alone forks workers that only compete for the same slice. The quota is read where
the kernel and ECS publish it:
- cgroup v2: `cpu.max` ("max 100000" or "50000 100000") of this process's cgroup;
- cgroup v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us` of the cpu controller's cgroup (-1: none);
  each readable ancestor counts too, since a limit set on a parent (a task) binds its children;
- ECS (Fargate included): the task metadata endpoint v4 (`$ECS_CONTAINER_METADATA_URI_V4/task`)
  gives the task's `Limits.CPU` "expressed in vCPUs" (AWS, "Amazon ECS task metadata v4 JSON
  response for tasks on Fargate"), which covers a task-level limit a container cannot see.
"""

from __future__ import annotations

import json
import math
import os
import urllib.request
from collections.abc import Mapping
from pathlib import Path

PROC_CGROUP = Path("/proc/self/cgroup")
MOUNTINFO = Path("/proc/self/mountinfo")


def _mounts(mountinfo: str) -> list[tuple[str, str, str, str]]:
    """(root, mount point, filesystem type, super options) of every cgroup mount."""
    mounts = []
    for line in mountinfo.splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) >= 5 and tail and tail[0] in ("cgroup", "cgroup2"):
            mounts.append((fields[3], fields[4], tail[0], tail[-1]))
    return mounts


def _folders(cgroup: str, root: str, mount: str) -> list[Path]:
    """This cgroup's folder under a mount, then each visible ancestor up to the mount point."""
    if root == "/":
        relative = cgroup
    elif cgroup == root or cgroup.startswith(root + "/"):
        relative = cgroup[len(root) :]
    else:
        return []  # the mount shows another part of the hierarchy
    parts = [p for p in relative.split("/") if p]
    return [Path(mount, *parts[:n]) for n in range(len(parts), -1, -1)]


def cgroup_cpus(proc_cgroup: str, mountinfo: str) -> float | None:
    """The tightest CPU quota over this process's cgroup and its visible ancestors, in CPUs."""
    limits: list[float] = []
    mounts = _mounts(mountinfo)
    for line in proc_cgroup.splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        for root, mount, fstype, options in mounts:
            if hierarchy == "0" and fstype == "cgroup2":
                quota = _v2
            elif (
                fstype == "cgroup"
                and "cpu" in controllers.split(",")
                and "cpu" in options.split(",")
            ):
                quota = _v1
            else:
                continue
            limits += [q for f in _folders(path, root, mount) if (q := quota(f)) is not None]
    return min(limits) if limits else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _v2(folder: Path) -> float | None:
    text = _read(folder / "cpu.max")
    if not text or text.startswith("max"):
        return None
    quota, period = text.split()
    return int(quota) / int(period)


def _v1(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    if not quota or not period or int(quota) <= 0:
        return None
    return int(quota) / int(period)


def ecs_task_cpus(environ: Mapping[str, str] = os.environ, timeout: float = 1.0) -> float | None:
    """The ECS task's CPU limit in vCPUs from the task metadata endpoint v4, when on ECS."""
    base = environ.get("ECS_CONTAINER_METADATA_URI_V4")
    if not base:
        return None
    try:
        with urllib.request.urlopen(f"{base}/task", timeout=timeout) as rsp:
            cpu = json.load(rsp).get("Limits", {}).get("CPU")
    except (OSError, ValueError):
        return None
    return float(cpu) if isinstance(cpu, int | float) and cpu > 0 else None


def available_cpus() -> float:
    """CPUs this process may use: the least of affinity, cgroup quota and ECS task limit."""
    limits = [float(len(os.sched_getaffinity(0)))]
    cgroup = cgroup_cpus(_read(PROC_CGROUP) or "", _read(MOUNTINFO) or "")
    limits += [x for x in (cgroup, ecs_task_cpus()) if x is not None]
    return min(limits)


def worker_count() -> int:
    """Processes worth running: one per whole CPU available, rounded up (0.25, 0.5, 1 -> 1)."""
    return max(1, math.ceil(available_cpus() - 1e-9))
