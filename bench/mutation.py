"""`make mutate`: mutation testing of the modules that keep the product's promises.

Each module is mutated by cosmic-ray, one mutant at a time, and run against its own tests only
(TARGETS, the one mapping), so a module takes minutes on 2 cores. The state machine's retry
policy is JSON, which no Python mutation tool reads: `asl_mutants` weakens it one field at a
time instead. Everything runs in a scratch copy of the tree (PYTHONPATH points there, so SCP
processes the tests start run the mutant too): the work tree is never left mutated, and other
checkouts keep working while it runs. It prints each survivor and a score per module, and
writes bench/results/mutation.json. Not part of `make test`.

    python -m bench.mutation                      # every module, one after the other
    python -m bench.mutation scp/slots.py         # one module
    python -m bench.mutation --tree /tmp/old ...  # the same against another checkout
"""

from __future__ import annotations

import argparse
import ast
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

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "mutation.json"
ASL = "lambdas/statemachine/import_workflow.asl.json"

# Module -> the tests that keep its promises. Live tests (SCP processes) are left out where
# in-process tests reach the same code: a mutant costs one run of these.
TARGETS: dict[str, tuple[str, ...]] = {
    "scp/storing.py": ("tests/scp/test_service.py",),
    "scp/storage/local.py": ("tests/scp/test_local_store.py", "tests/scp/test_service.py"),
    # In-process only: its other tests run SCP processes (about 40 s a run).
    "scp/storage/s3.py": tuple(
        f"tests/scp/test_s3_store.py::test_{name}"
        for name in (
            "the_store_writes_instances_and_documents_under_its_prefix",
            "an_instance_at_the_threshold_goes_in_parts_of_part_size",
            "parts_grow_so_that_an_instance_fits_in_s3s_part_count",
            "failed_multipart_upload_is_aborted",
            "storage_errors_name_the_object_and_a_failed_abort_is_logged",
        )
    ),
    "scp/slots.py": ("tests/scp/test_slots.py",),
    "scp/batches.py": ("tests/scp/test_service.py",),
    "scp/dataset_scan.py": ("tests/scp/test_dataset_scan.py",),
    "lambdas/results.py": ("tests/lambdas/test_results.py",),
    "lambdas/import_output.py": ("tests/lambdas/test_results.py",),
    "generator/template/iam.py": ("tests/generator/test_resources.py",),
    "generator/template/kms.py": ("tests/generator/test_kms.py",),
    ASL: ("tests/lambdas/test_statemachine.py",),
}

# PIT's default set, in cosmic-ray's names: arithmetic swapped for its inverse, comparisons
# negated or moved across their boundary, plus every non-operator mutation cosmic-ray has. The
# other 120 operator swaps (a + b -> a ** b, a < b -> a is b) add runs, not findings.
KEPT_SWAPS = (
    "Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Mul|Mod_FloorDiv|BitAnd_BitOr|BitOr_BitAnd|"
    "LShift_RShift|RShift_LShift|Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Lt_GtE|GtE_Lt|Gt_LtE|LtE_Gt|Eq_NotEq|"
    "NotEq_Eq|Is_IsNot|IsNot_Is|USub_UAdd|Delete_Not|Delete_USub"
)
EXCLUDED_OPERATORS = (
    rf"core/Replace(Binary|Comparison|Unary)Operator_(?!({KEPT_SWAPS})$)",
    "core/VariableInserter",
    "core/VariableReplacer",
)

# Mutants no test can kill because the program means the same: (module, operator, and
# "line => mutated line" as regular expressions; why). The score leaves them out and the report
# lists them apart. Mutants inside a type annotation are equivalent too (`annotation_spans`).
EQUIVALENT: tuple[tuple[str, str, str, str], ...] = (
    (
        "scp/storage/local.py",
        "ReplaceBinaryOperator_LShift_RShift|NumberReplacer",
        r"shutil\.copyfileobj\(src, out, 1 << 20\)",
        "the copy's buffer size: every length copies the same bytes (0 is shutil's default)",
    ),
    (
        "scp/batches.py",
        "NumberReplacer|ReplaceBinaryOperator_Mul_Div",
        r"max_(files|bytes): int = ",
        "Limits' defaults: the SCP always passes BATCH_MAX_FILES and BATCH_MAX_BYTES (service.py)",
    ),
    (
        "scp/batches.py",
        "NumberReplacer",
        r"marker_written: float = 0\.0",
        "never read: a batch writes its marker, which sets marker_written, as it opens",
    ),
    (
        "scp/batches.py",
        "NumberReplacer",
        r"range\(1, CLOSE_ATTEMPTS \+ 1\): => .*CLOSE_ATTEMPTS \+ 2\)",
        "an attempt past the last is never reached: the last returns, an earlier success breaks",
    ),
    (
        "scp/batches.py|generator/template/kms.py",
        "ReplaceTrueWithFalse",
        r"@dataclass\(frozen=True\)",
        "never assigned to nor hashed: frozen forbids only what no code does",
    ),
    (
        "scp/storage/s3.py",
        "NumberReplacer",
        r"max_attempts|connect_timeout|read_timeout|max_pool_connections",
        "tuning of the boto3 client (retries, timeouts, pool): no answer or stored byte changes",
    ),
    (
        "scp/storage/s3.py",
        "NumberReplacer|ReplaceBinaryOperator_Mul_Div|ReplaceBinaryOperator_Pow_Mul",
        r"multipart_threshold: int = 64 \* 2\*\*20",
        "S3Store's default: the SCP always passes S3_MULTIPART_THRESHOLD (app.py, make_store)",
    ),
    (
        "scp/dataset_scan.py",
        "NumberReplacer",
        r"struct\.unpack\(.*\)\[0\].* => .*\)\[ ?-1\]",
        "one value unpacked: [0] and [-1] are the same",
    ),
    (
        "scp/dataset_scan.py",
        "NumberReplacer",
        r"CHUNK = 1 << 20 =>|buffering=65536\) as fp: =>",
        "a read's buffer size: the same bytes are read",
    ),
    (
        "scp/dataset_scan.py",
        "NumberReplacer",
        r"^self\.pos = 0 =>",
        "a constant offset: a deflated reader's positions are only compared with its own",
    ),
    (
        "scp/dataset_scan.py",
        "NumberReplacer",
        r"self\._fill\(1\) => .*_fill\( ?2\)",
        "asks for one byte more: the buffer is empty after filling either way, or not",
    ),
    (
        "scp/dataset_scan.py",
        "ReplaceComparisonOperator_Lt_LtE",
        r"while len\(self\.buf\) < n and not self\.eof:",
        "inflates at most one chunk ahead: the same bytes come out",
    ),
    (
        "scp/dataset_scan.py",
        "ReplaceComparisonOperator_Gt_GtE",
        r"^if pos > end:",
        "pos == end has returned on the line above: > and >= agree",
    ),
    (
        "scp/dataset_scan.py",
        "NumberReplacer",
        r"^(rows|columns|bits_allocated): int = 0 => .*= -1$",
        "a geometry value the dataset lacks: 0 and -1 both make the expected length 0 or less",
    ),
    (
        "scp/dataset_scan.py",
        "NumberReplacer|ReplaceAndWithOr",
        r"if self\.implicit and group != 0xFFFE: => .*(65535|65533|self\.implicit or group)",
        "an item or delimiter's VR is never read: its tag decides what the walker does",
    ),
    (
        "scp/storage/s3.py",
        "ReplaceBinaryOperator_Mul_Div",
        r"^\*, => /,$",
        "every caller passes bucket and prefix by position and the rest by name: * and / agree",
    ),
    (
        "scp/storage/s3.py",
        "NumberReplacer",
        r"^port: int = 0,",
        "S3Store's default: the SCP always passes its port (app.py, make_store)",
    ),
    (
        "scp/storage/(s3|local)\\.py",
        "NumberReplacer",
        r"json\.dumps\(document, indent=1\)",
        "the manifest's indentation: the same JSON document",
    ),
    (
        "lambdas/results.py",
        "NumberReplacer",
        r"ThreadPoolExecutor\(16\)",
        "the tagging pool's size: the same objects are tagged, more or fewer at once",
    ),
)
ANNOTATION = "a type annotation, never evaluated (from __future__ import annotations)"


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) of every annotation in a module whose annotations are never evaluated."""
    if "from __future__ import annotations" not in source:
        return []
    spans = []
    for node in ast.walk(ast.parse(source)):
        found = []
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation:
            found.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            found.append(node.returns)
        spans += [
            ((a.lineno, a.col_offset), (a.end_lineno or 0, a.end_col_offset or 0)) for a in found
        ]
    return spans


def equivalence(module: str, operator: str, change: str, position: tuple[int, int], spans) -> str:
    """Why this mutant ("line => mutated line" at position) is equivalent, or ''."""
    if any(start <= position < end for start, end in spans):
        return ANNOTATION
    for where, operators, text, reason in EQUIVALENT:
        if (
            re.fullmatch(where, module)
            and re.fullmatch(operators, operator)
            and re.search(text, change)
        ):
            return reason
    return ""


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
        parser.error(f"no tests mapped for {unknown}; add them to TARGETS in {__file__}")
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
