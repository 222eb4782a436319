"""Worker count from the CPU quota: cgroup v2 and v1 layouts as the kernel and runtimes show
them (podman/runc under cgroup v1, docker/containerd with a cgroup namespace under v2, a host
view with a task-level limit on a parent), and the ECS task metadata endpoint."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from scp import cpu_quota

# /proc/self/mountinfo lines in the kernel's format (proc(5)): ID parent major:minor root mount
# options ... - type source super-options
V1_CONTAINER = (
    "80 79 0:29 /libpod_parent/libpod-1 {mount}/cpu ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
)
V2_NAMESPACED = "35 24 0:30 / {mount} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V1_HOST = "40 24 0:33 / {mount}/cpu rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"


def v1(folder: Path, quota: int, period: int = 100000) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (folder / "cpu.cfs_period_us").write_text(f"{period}\n")


@pytest.mark.parametrize(
    ("quota", "cpus"), [(25000, 0.25), (50000, 0.5), (150000, 1.5), (-1, None)]
)
def test_cgroup_v1_in_a_container(tmp_path, quota, cpus):
    v1(tmp_path / "cpu", quota)
    proc = "2:cpu,cpuacct:/libpod_parent/libpod-1\n1:memory:/libpod_parent/libpod-1\n"
    assert cpu_quota.cgroup_cpus(proc, V1_CONTAINER.format(mount=tmp_path)) == cpus


@pytest.mark.parametrize(("text", "cpus"), [("50000 100000", 0.5), ("max 100000", None)])
def test_cgroup_v2_with_a_namespace(tmp_path, text, cpus):
    (tmp_path / "cpu.max").write_text(text + "\n")
    assert cpu_quota.cgroup_cpus("0::/\n", V2_NAMESPACED.format(mount=tmp_path)) == cpus


def test_a_limit_on_a_parent_binds_its_children(tmp_path):
    """Fargate-like: the task's cgroup carries the quota, the container's none."""
    v1(tmp_path / "cpu" / "ecs" / "task", 25000)
    v1(tmp_path / "cpu" / "ecs" / "task" / "container", -1)
    proc = "3:cpu,cpuacct:/ecs/task/container\n"
    assert cpu_quota.cgroup_cpus(proc, V1_HOST.format(mount=tmp_path)) == 0.25


def test_a_mount_of_another_part_of_the_hierarchy_is_ignored(tmp_path):
    v1(tmp_path / "cpu", 25000)
    proc = "2:cpu,cpuacct:/elsewhere\n"
    assert cpu_quota.cgroup_cpus(proc, V1_CONTAINER.format(mount=tmp_path)) is None


@pytest.fixture
def task_metadata():
    """A task metadata endpoint v4 answering GET /task with a Limits object as documented in
    "Amazon ECS task metadata v4 JSON response for tasks on Fargate" (task-level CPU in vCPUs)."""
    body = {"Cluster": "default", "Limits": {"CPU": 0.25, "Memory": 512}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(body if self.path == "/v4/abc/task" else {}).encode()
            self.send_response(200)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/v4/abc"
    server.shutdown()


def test_ecs_task_limit(task_metadata):
    assert cpu_quota.ecs_task_cpus({"ECS_CONTAINER_METADATA_URI_V4": task_metadata}) == 0.25
    assert cpu_quota.ecs_task_cpus({}) is None
    assert cpu_quota.ecs_task_cpus({"ECS_CONTAINER_METADATA_URI_V4": "http://127.0.0.1:1"}) is None


@pytest.mark.parametrize(("cpus", "workers"), [(0.25, 1), (0.5, 1), (1.0, 1), (1.5, 2), (2.0, 2)])
def test_one_worker_per_whole_cpu_rounded_up(monkeypatch, cpus, workers):
    monkeypatch.setattr(cpu_quota, "available_cpus", lambda: cpus)
    assert cpu_quota.worker_count() == workers


@pytest.mark.parametrize(
    ("affinity", "quota", "task", "cpus"),
    [(8, None, None, 8.0), (8, 1.5, None, 1.5), (8, 1.5, 0.25, 0.25), (1, 2.0, 4.0, 1.0)],
)
def test_available_cpus_is_the_least_of_affinity_quota_and_task_limit(
    monkeypatch, affinity, quota, task, cpus
):
    """Every input pinned, so the host running the suite does not choose the branch."""
    monkeypatch.setattr(cpu_quota.os, "sched_getaffinity", lambda _pid: set(range(affinity)))
    monkeypatch.setattr(cpu_quota, "_read", lambda _path: "")
    monkeypatch.setattr(cpu_quota, "cgroup_cpus", lambda _cgroup, _mountinfo: quota)
    monkeypatch.setattr(cpu_quota, "ecs_task_cpus", lambda: task)
    assert cpu_quota.available_cpus() == cpus
