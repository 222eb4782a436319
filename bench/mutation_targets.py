"""What `make mutate` mutates, against which tests, and which mutants are equivalent (the one
place that says so; bench/mutation.py runs it)."""

from __future__ import annotations

import ast
import re

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
