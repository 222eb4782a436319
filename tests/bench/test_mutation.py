"""`make mutate`'s own parts (bench/mutation.py and mutation_targets.py), without running a
mutation: its mapping names files that exist, its equivalent mutants name lines that exist, and
its two mutators."""

from __future__ import annotations

import json
import re

from bench.mutation import REPO, ModuleResult, Mutant, asl_mutants, report
from bench.mutation_targets import (
    ANNOTATION,
    ASL,
    EQUIVALENT,
    TARGETS,
    annotation_spans,
    equivalence,
)


def test_every_target_and_its_tests_exist():
    for module, tests in TARGETS.items():
        assert (REPO / module).is_file(), module
        assert tests and all((REPO / t.split("::")[0]).is_file() for t in tests), module


def test_every_equivalent_mutant_names_a_line_of_its_module():
    """A stale entry (the line changed) shows here, not as a silently wider excuse."""
    for modules, _operators, text, reason in EQUIVALENT:
        named = [m for m in TARGETS if re.fullmatch(modules, m)]
        assert named and reason, modules
        for module in named:
            lines = (REPO / module).read_text().splitlines()
            line_pattern = text.split(" =>")[0]
            assert any(re.search(line_pattern, line.strip()) for line in lines), (module, text)


SOURCE = """from __future__ import annotations


def f(x: int | None, *, y: str | None = None) -> dict | None:
    z: int | None = x | 1
    return {"z": z}
"""


def test_a_mutant_inside_an_annotation_is_equivalent_and_one_outside_is_not():
    spans = annotation_spans(SOURCE)
    assert equivalence("m.py", "ReplaceBinaryOperator_BitOr_BitAnd", "", (4, 13), spans)
    assert equivalence("m.py", "ReplaceBinaryOperator_BitOr_BitAnd", "", (4, 50), spans)
    assert equivalence("m.py", "ReplaceBinaryOperator_BitOr_BitAnd", "", (5, 11), spans)
    assert equivalence("m.py", "ReplaceBinaryOperator_BitOr_BitAnd", "", (5, 22), spans) == ""
    assert equivalence("m.py", "x", "", (4, 13), spans) == ANNOTATION
    assert annotation_spans(SOURCE.replace("from __future__ import annotations", "")) == []


def test_each_asl_mutant_weakens_one_field_of_one_retrier():
    definition = {
        "States": {
            "Task": {
                "Type": "Task",
                "Retry": [
                    {
                        "ErrorEquals": ["A", "B"],
                        "MaxAttempts": 5,
                        "BackoffRate": 2,
                        "JitterStrategy": "FULL",
                    }
                ],
            },
            "Done": {"Type": "Succeed"},
        }
    }
    mutants = dict(asl_mutants(definition))
    assert list(mutants) == [
        "Task.Retry[0] without A",
        "Task.Retry[0] without B",
        "Task.Retry[0] removed",
        "Task.Retry[0] MaxAttempts 1",
        "Task.Retry[0] BackoffRate 1.0",
        "Task.Retry[0] without JitterStrategy",
    ]
    assert mutants["Task.Retry[0] without A"]["States"]["Task"]["Retry"][0]["ErrorEquals"] == ["B"]
    assert mutants["Task.Retry[0] removed"]["States"]["Task"]["Retry"] == []
    assert definition["States"]["Task"]["Retry"][0]["ErrorEquals"] == ["A", "B"], "not mutated"


def test_the_real_retry_policy_gives_distinct_mutants():
    definition = json.loads((REPO / ASL).read_text())
    mutants = [json.dumps(m, sort_keys=True) for _, m in asl_mutants(definition)]
    assert len(mutants) > 20 and len(set(mutants)) == len(mutants)
    assert json.dumps(definition, sort_keys=True) not in mutants


def test_the_score_leaves_equivalent_mutants_out_and_the_report_lists_survivors():
    result = ModuleResult("m.py", ("t.py",), mutants=10, killed=7)
    result.equivalent = [Mutant("m.py:3", "op", "x", "d", ANNOTATION)]
    result.survivors = [Mutant("m.py:9", "AddNot", "if a:", "-    if a:\n+    if not a:")]
    assert round(result.score, 1) == 77.8
    text = report(result)
    assert "m.py: 77.8 % (7 of 9 killed, 1 equivalent)" in text
    assert "SURVIVED m.py:9 AddNot: if a:" in text and "+    if not a:" in text
    assert f"equivalent, {ANNOTATION}: line 3" in text
