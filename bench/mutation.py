"""`make mutate`: mutation testing of the modules that keep the product's promises.

Each module is mutated by cosmic-ray, one mutant at a time, and run against its own tests only
(TARGETS in bench/mutation_targets.py, the one mapping), so a module takes minutes on 2 cores.
The state machine's retry policy is JSON, which no Python mutation tool reads: `asl_mutants`
weakens it one field at a time instead. Everything runs in a scratch copy of the tree
(PYTHONPATH points there, so SCP processes the tests start run the mutant too): the work tree is
never left mutated, and other checkouts keep working while it runs. It prints each survivor and
a score per module, and writes bench/results/mutation.json. Not part of `make test`.

    python -m bench.mutation                      # every module, one after the other
    python -m bench.mutation scp/slots.py         # one module
    python -m bench.mutation --tree /tmp/old ...  # the same against another checkout
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.mutation_targets import ASL, EXCLUDED_OPERATORS, TARGETS, annotation_spans, equivalence

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "mutation.json"


@dataclass
class Mutant:
    where: str  # path:line
    operator: str
    line: str
    diff: str = ""
    equivalent: str = ""


@dataclass
class ModuleResult:
    module: str
    tests: tuple[str, ...]
    mutants: int = 0
    killed: int = 0
    survivors: list[Mutant] = field(default_factory=list)
    equivalent: list[Mutant] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def score(self) -> float:
        counted = self.mutants - len(self.equivalent)
        return 100.0 * self.killed / counted if counted else 100.0


def scratch_copy(tree: Path, into: Path) -> Path:
    """The tracked and untracked (not ignored) files of `tree`, or all of it if not a checkout."""
    listed = subprocess.run(
        ["git", "-C", str(tree), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True,
        check=False,
    )
    names = [n for n in listed.stdout.decode().split("\0") if n] if listed.returncode == 0 else []
    if not names:
        ignore = shutil.ignore_patterns(".venv", ".git", "__pycache__")
        shutil.copytree(tree, into, ignore=ignore, dirs_exist_ok=True)
        return into
    for name in names:
        source = tree / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    return into


def pytest_command(tests: tuple[str, ...]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]


def environment(work: Path) -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1"}


def run_tests(work: Path, tests: tuple[str, ...], timeout: float) -> tuple[bool, str]:
    """(passed, output tail) of the module's tests in the scratch copy; a timeout is a kill."""
    try:
        done = subprocess.run(
            pytest_command(tests),
            cwd=work,
            env=environment(work),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False, "timeout"
    return done.returncode == 0, (done.stdout + done.stderr)[-2000:]


def tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


PREVIOUSLY_KILLED = "killed in the run given to --survivors-of; not run again"


def previous_survivors(path: Path, module: str) -> set[tuple[int, str]]:
    """(line, operator) of every mutant of `module` a previous run's results did not kill."""
    result = json.loads(path.read_text()).get(module, {})
    unkilled = result.get("survivors", []) + result.get("equivalent", [])
    return {(int(m["where"].rsplit(":", 1)[1]), m["operator"]) for m in unkilled}


def keep_only(session: Path, rerun: set[tuple[int, str]]) -> None:
    """Mark every pending mutant whose (line, operator) is not in `rerun` as killed before."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            (spec,) = item.mutations
            if (spec.start_pos[0], spec.operator_name.removeprefix("core/")) not in rerun:
                skipped = WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=PREVIOUSLY_KILLED)
                db.set_result(item.job_id, skipped)


def cosmic_ray(
    module: str,
    tests: tuple[str, ...],
    work: Path,
    timeout: float,
    rerun: set[tuple[int, str]] | None = None,
) -> list[dict]:
    """Run cosmic-ray over one module (only the mutants in `rerun`, when given); its session's
    (work item, result) pairs."""
    import shlex

    config = work / ".mutation.toml"
    excluded = ", ".join(json.dumps(e) for e in EXCLUDED_OPERATORS)
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(shlex.join(pytest_command(tests)))}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{excluded}]\n"
    )
    session = work / ".mutation.sqlite"
    env = environment(work)
    for argv in (
        [tool("cosmic-ray"), "init", str(config), str(session), "--force"],
        [tool("cr-filter-operators"), str(session), str(config)],
    ):
        subprocess.run(argv, cwd=work, env=env, check=True, capture_output=True)
    if rerun is not None:
        keep_only(session, rerun)
    exec_argv = [tool("cosmic-ray"), "exec", str(config), str(session)]
    subprocess.run(exec_argv, cwd=work, env=env, check=True, capture_output=True)
    dump = subprocess.run(
        [tool("cosmic-ray"), "dump", str(session)],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return [json.loads(line) for line in dump.stdout.splitlines() if line.strip()]


def cosmic_ray_mutants(module: str, pairs: list[dict], source: str) -> Iterator[Mutant]:
    """Each executed mutant, `diff` empty when it was killed."""
    lines, spans = source.splitlines(), annotation_spans(source)
    for item, result in pairs:
        if result is None or result.get("worker_outcome") == "skipped":
            if result and result.get("output") == PREVIOUSLY_KILLED:
                (spec,) = item["mutations"]
                line = spec["start_pos"][0]
                operator = spec["operator_name"].removeprefix("core/")
                yield Mutant(f"{module}:{line}", operator, lines[line - 1].strip())
            continue
        (spec,) = item["mutations"]
        line, column = spec["start_pos"]
        operator = spec["operator_name"].removeprefix("core/")
        text = lines[line - 1].strip()
        diff = result.get("diff") or ""
        added = [d[1:].strip() for d in diff.splitlines() if re.match(r"\+[^+]", d)]
        survived = result.get("test_outcome") == "survived"
        yield Mutant(
            f"{module}:{line}",
            operator,
            text,
            (diff or "survived") if survived else "",
            equivalence(
                module, operator, f"{text} => {added[0] if added else ''}", (line, column), spans
            ),
        )


def asl_mutants(definition: dict) -> Iterator[tuple[str, dict]]:
    """The retry policy weakened one field at a time: each error left out of a retrier, each
    retrier removed, one attempt only, no backoff, no jitter."""
    for name, state in definition["States"].items():
        for index, retrier in enumerate(state.get("Retry", [])):
            where = f"{name}.Retry[{index}]"
            for error in retrier["ErrorEquals"]:
                mutant = copy.deepcopy(definition)
                mutant["States"][name]["Retry"][index]["ErrorEquals"].remove(error)
                yield f"{where} without {error}", mutant
            mutant = copy.deepcopy(definition)
            del mutant["States"][name]["Retry"][index]
            yield f"{where} removed", mutant
            for key, weaker in (("MaxAttempts", 1), ("BackoffRate", 1.0)):
                if retrier.get(key, weaker) != weaker:
                    mutant = copy.deepcopy(definition)
                    mutant["States"][name]["Retry"][index][key] = weaker
                    yield f"{where} {key} {weaker}", mutant
            if "JitterStrategy" in retrier:
                mutant = copy.deepcopy(definition)
                del mutant["States"][name]["Retry"][index]["JitterStrategy"]
                yield f"{where} without JitterStrategy", mutant


def run_asl(tests: tuple[str, ...], work: Path, timeout: float) -> Iterator[Mutant]:
    path = work / ASL
    original = path.read_text()
    try:
        for description, mutant in asl_mutants(json.loads(original)):
            path.write_text(json.dumps(mutant, indent=2))
            killed = not run_tests(work, tests, timeout)[0]
            yield Mutant(ASL, "RetryPolicy", description, "" if killed else "survived")
    finally:
        path.write_text(original)


def mutate(
    module: str,
    tree: Path,
    keep: bool = False,
    tests: tuple[str, ...] = (),
    survivors_of: Path | None = None,
) -> ModuleResult:
    """Mutate one module of `tree` in a scratch copy, against `tests` or TARGETS[module]; with
    `survivors_of`, run only what that earlier results file did not see killed."""
    tests = tests or TARGETS[module]
    result = ModuleResult(module, tests)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="mutate-"))
    try:
        scratch_copy(tree, work)
        missing = [t for t in (module, *tests) if not (work / t.split("::")[0]).exists()]
        if missing:
            result.error = f"not in {tree}: {', '.join(missing)}"
            return result
        baseline_started = time.monotonic()
        passed, output = run_tests(work, tests, timeout=900)
        if not passed:
            result.error = f"its tests fail before any mutation:\n{output}"
            return result
        timeout = 3 * (time.monotonic() - baseline_started) + 20
        if module == ASL:
            mutants = list(run_asl(tests, work, timeout))
        else:
            rerun = previous_survivors(survivors_of, module) if survivors_of else None
            pairs = cosmic_ray(module, tests, work, timeout, rerun)
            mutants = list(cosmic_ray_mutants(module, pairs, (work / module).read_text()))
        for mutant in (m for m in mutants if m.diff):  # the killed ones need no reason
            (result.equivalent if mutant.equivalent else result.survivors).append(mutant)
        result.mutants = len(mutants)
        result.killed = result.mutants - len(result.survivors) - len(result.equivalent)
    finally:
        result.seconds = round(time.monotonic() - started, 1)
        if keep:
            print(f"  scratch copy kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def report(result: ModuleResult) -> str:
    if result.error:
        return f"{result.module}: NOT RUN, {result.error}"
    lines = [
        f"{result.module}: {result.score:.1f} % ({result.killed} of "
        f"{result.mutants - len(result.equivalent)} killed, {len(result.equivalent)} "
        f"equivalent) in {result.seconds:.0f} s against {' '.join(result.tests)}"
    ]
    for m in result.survivors:
        lines.append(f"  SURVIVED {m.where} {m.operator}: {m.line}")
        lines += [f"    {d}" for d in m.diff.splitlines() if re.match(r"[-+][^-+]", d)]
    reasons: dict[str, list[str]] = {}
    for m in result.equivalent:
        reasons.setdefault(m.equivalent, []).append(m.where.rsplit(":", 1)[-1])
    lines += [f"  equivalent, {why}: line {', '.join(at)}" for why, at in reasons.items()]
    return "\n".join(lines)


def save(results: list[ModuleResult], path: Path = RESULTS) -> None:
    """Merge these modules' results into the results file (one entry per module)."""
    saved = json.loads(path.read_text()) if path.exists() else {}
    for r in results:
        saved[r.module] = {**asdict(r), "score": round(r.score, 1)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mutation", description=__doc__)
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: every target)")
    parser.add_argument("--tree", type=Path, default=REPO, help="checkout to mutate a copy of")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy")
    parser.add_argument("--tests", nargs="+", default=(), help="other tests than TARGETS'")
    parser.add_argument(
        "--survivors-of",
        type=Path,
        help="a results file of an earlier run (its tests since only grew): run again only the "
        "mutants it did not see killed, and count the others killed",
    )
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in TARGETS]
    if unknown:
        parser.error(
            f"no tests mapped for {unknown}; add them to TARGETS in bench/mutation_targets.py"
        )
    results = []
    for module in args.modules or TARGETS:
        print(f"mutating {module} ...", flush=True)
        results.append(
            mutate(module, args.tree.resolve(), args.keep, tuple(args.tests), args.survivors_of)
        )
        print(report(results[-1]), flush=True)
    save(results)
    survivors = sum(len(r.survivors) for r in results)
    failed = [r.module for r in results if r.error]
    print(f"{survivors} survivors in {len(results)} modules; not run: {failed or 'none'}")
    return 1 if survivors or failed else 0


if __name__ == "__main__":
    sys.exit(main())
