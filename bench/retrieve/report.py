"""The retrieve benchmark's Markdown section: medians and spread per source and operation, ours
over dcmqrscp, what the figures mean for HealthImaging, and the failed runs."""

from __future__ import annotations

from collections import defaultdict
from statistics import median

from bench.datasets import Generated
from bench.retrieve.runs import OPERATIONS, RetrieveRun
from scp.qr.service import IN_FLIGHT

HEADING = "## Retrieve"
MIB = 1024 * 1024
OURS, DCMQRSCP = "ours", "dcmqrscp"
# "AWS HealthImaging throttling limits" (developer guide): the account's GetDICOMInstance is
# throttled at 50 TPS, burst 100, adjustable through AWS Support. How a burst is granted is not
# documented there.
# https://docs.aws.amazon.com/healthimaging/latest/devguide/throttling-limits.html
GET_INSTANCE_TPS, GET_INSTANCE_BURST = 50, 100
LATENCIES_MS = (25, 50, 100, 200)  # per GetDICOMInstance, for the arithmetic in the notes


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:,.1f}"
    return f"{median(values):,.1f} ({min(values):,.1f}-{max(values):,.1f})"


def _table(runs: list[RetrieveRun]) -> tuple[list[str], dict[tuple[str, str], float]]:
    """The table's lines and the median instances/s per (source, operation) that succeeded."""
    groups: dict[tuple[str, str], list[RetrieveRun]] = defaultdict(list)
    for run in runs:
        groups[(run.source, run.operation)].append(run)
    order = sorted(
        groups, key=lambda k: (list(OPERATIONS).index(k[1]), k[0] == DCMQRSCP, len(k[0]), k[0])
    )
    lines = [
        "| Source | Retrieve | Runs ok | inst/s | MB/s | Seconds per run | Peak RSS MiB | CPU s |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    rates = {}
    for key in order:
        good = [r for r in groups[key] if not r.error]
        counted = f"{len(good)} of {len(groups[key])}"
        if not good:
            lines.append(
                f"| {key[0]} | {OPERATIONS[key[1]]} | {counted} | failed | failed | - | - | - |"
            )
            continue
        rates[key] = median(r.instances_per_s for r in good)
        seconds = ", ".join(f"{r.seconds:.2f}" for r in good)
        lines.append(
            f"| {key[0]} | {OPERATIONS[key[1]]} | {counted} "
            f"| {_spread([r.instances_per_s for r in good])} "
            f"| {_spread([r.mb_per_s for r in good])} | {seconds} "
            f"| {median(r.peak_rss for r in good) / MIB:,.0f} "
            f"| {median(r.cpu_seconds for r in good):,.2f} |"
        )
    return lines, rates


def _healthimaging(study: Generated) -> list[str]:
    """What HealthImaging's quota and a retrieve's window allow for this study: arithmetic from
    documented and configured figures, not a measurement."""
    mb = study.dataset_bytes / study.count / 1e6

    def rate(ms: int) -> float:
        return min(IN_FLIGHT * 1000 / ms, GET_INSTANCE_TPS)

    windows = ", ".join(
        f"{ms} ms: {rate(ms):,.0f} inst/s ({study.count / rate(ms):,.1f} s)" for ms in LATENCIES_MS
    )
    return [
        f"- HealthImaging throttles GetDICOMInstance at {GET_INSTANCE_TPS} requests per second, "
        f'burst {GET_INSTANCE_BURST}, per account (developer guide, "AWS HealthImaging throttling '
        f'limits"; adjustable through AWS Support): at that rate this study takes '
        f"{study.count / GET_INSTANCE_TPS:,.1f} s ({GET_INSTANCE_TPS} inst/s, "
        f"{GET_INSTANCE_TPS * mb:,.1f} MB/s) whatever the link (the burst may shorten one "
        "study's; how it is granted is not documented), and concurrent retrieves share the rate. "
        f"A figure above {GET_INSTANCE_TPS} inst/s here is out of HealthImaging's reach for longer "
        "than a burst without a quota increase.",
        f"- Our SCP keeps {IN_FLIGHT} GetDICOMInstance requests in flight per C-MOVE or C-GET "
        "(IN_FLIGHT in scp/qr/service.py), so one retrieve runs at most at IN_FLIGHT / (round "
        "trip + service time) instances per second. Over the internet that latency, not the "
        "loopback figures above, governs. At a latency per request of "
        f"{windows} for this study (arithmetic, with the {GET_INSTANCE_TPS} TPS cap).",
    ]


def _delayed(runs: list[RetrieveRun], rates: dict[tuple[str, str], float]) -> list[str]:
    """For each source with a round trip added: what IN_FLIGHT allows, and what it reached."""
    lines = []
    for source, rtt in sorted({(r.source, r.rtt_ms) for r in runs if r.rtt_ms}):
        reached = ", ".join(
            f"{OPERATIONS[op]} {rates[(source, op)]:,.1f}"
            for op in OPERATIONS
            if (source, op) in rates
        )
        lines.append(
            f"- {source} is our SCP with {rtt} ms added to every round trip to the DICOMweb side "
            f"(a userspace relay, tests/support/relay.py): with {IN_FLIGHT} requests in flight "
            f"it can reach at most {IN_FLIGHT * 1000 / rtt:,.1f} inst/s; it reached "
            f"{reached or 'nothing'} inst/s."
        )
    return lines


def render(runs: list[RetrieveRun], about: dict[str, str], study: Generated) -> str:
    """The report's Retrieve section, headed HEADING, ready to be a file or part of one."""
    table, rates = _table(runs)
    ratios = [
        f"{OPERATIONS[op]} {rates[(OURS, op)] / rates[(DCMQRSCP, op)]:.2f}x"
        for op in OPERATIONS
        if (OURS, op) in rates and (DCMQRSCP, op) in rates
    ]
    lines = [
        f"{HEADING}: a {study.count}-slice CT study to a dcmtk storescp",
        "",
        "Generated by `python -m bench.retrieve` (`make bench`), do not edit; rerun to refresh.",
        "",
        *(f"- {k}: {v}" for k, v in about.items()),
        "",
        "One retrieve of the whole study at study level (Study Root) at a time: C-MOVE by dcmtk",
        "`movescu` to a dcmtk `storescp` started empty for each run (writing to tmpfs), C-GET by",
        "dcmtk `getscu` receiving it itself. Seconds run from the request to the final response",
        "(the tool's own log timestamps); every run must deliver every instance of the study once",
        "with the study's dataset size, or it counts as failed. inst/s and MB/s (10^6 bytes of",
        "datasets received) are medians over the runs, with the slowest and fastest in brackets;",
        "runs are interleaved so that other load falls on both sources alike. Peak RSS and CPU",
        "seconds are the source's process tree during the retrieve: for ours the SCP only, not",
        "Orthanc or the proxy (which runs in the benchmark's own process), that serve it.",
        "",
        "- ours: our SCP (`python -m scp`), each instance listed with QIDO-RS and fetched with",
        "  WADO-RS (GetDICOMInstance) from Orthanc's DICOMweb through the SigV4-verifying",
        "  HealthImaging proxy (tests/fakes/dicomweb_proxy.py), all on loopback.",
        "- dcmqrscp: dcmtk's Query/Retrieve SCP (a child process per association) serving the same",
        "  files from its own database on tmpfs (indexed with dcmqridx).",
        "",
        *table,
        "",
        f"ours / dcmqrscp, instances per second: {', '.join(ratios) or 'no figure'}.",
        "",
        "### What these figures mean",
        "",
        "- They compare the two servers' own cost on the same cores: our SCP signs, lists,",
        "  fetches, decodes and re-encodes every instance, and the proxy and Orthanc that stand in",
        "  for HealthImaging share the cores with it; dcmqrscp reads files. They are not",
        "  HealthImaging's speed: here every GetDICOMInstance crosses loopback, with no network",
        "  round trip and no service time of HealthImaging's own.",
        *_healthimaging(study),
        *_delayed(runs, rates),
    ]
    failures = [
        f"- {r.source} {OPERATIONS[r.operation]} run {r.repeat}: {r.error}" for r in runs if r.error
    ]
    if failures:
        lines += ["", "### Failed runs", "", *failures]
    return "\n".join(lines) + "\n"


def splice(document: str, section: str) -> str:
    """`document` with its Retrieve section (HEADING to the next `## ` heading or the end)
    replaced by `section`, or `section` appended when it has none."""
    lines = document.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(HEADING)), None)
    if start is None:
        return document.rstrip("\n") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    following = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + following if following else "")
