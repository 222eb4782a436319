"""The most history events one execution of an ASL definition can write, computed from the
definition itself, so that a change to the ASL changes the figure.

Events per state visit, by state type. The event types are those of the Step Functions API
Reference ("HistoryEvent"); which ones a visit writes is what an execution's history shows, and
tests/lambdas/test_history.py checks this model against moto's interpreter event for event:
- Task: {Task,LambdaFunction}StateEntered, Scheduled, Started, Succeeded or Failed, StateExited
  (5), and 3 more (Scheduled, Started, Failed) for every retry;
- Pass, Wait, Choice: StateEntered and StateExited (2);
- Succeed: SucceedStateEntered, SucceedStateExited and ExecutionSucceeded (3);
- Fail: FailStateEntered and ExecutionFailed (2);
- and ExecutionStarted, once.
An execution that reaches 25,000 events fails, and nothing can catch that (Step Functions
developer guide, "Avoid reaching the history quota"; "Service quotas": 25,000 events).

Loops: the definition may loop only through a counter, as the import workflow's status checks do:
a Choice rule `{"Variable": V, "NumericGreaterThanEquals": K}` leaves the loop, every way around
it passes a Pass state that sets V to States.MathAdd(V, 1), and V starts at 0. The loop then
runs at most K times round, plus one last time from its entry to its exit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

HISTORY_QUOTA = 25_000
TASK_EVENTS, RETRY_EVENTS = 5, 3
EVENTS = {"Pass": 2, "Wait": 2, "Choice": 2, "Succeed": 3, "Fail": 2}
DEFAULT_MAX_ATTEMPTS = 3  # Amazon States Language: a retrier's MaxAttempts defaults to 3
INCREMENT = re.compile(r"States\.MathAdd\(\$\.(\w+)\.(\w+), 1\)")


def visit_events(state: dict) -> int:
    """The most events one visit of a state writes: a Task retried by every retrier to its
    MaxAttempts (each retrier counts its own attempts, so errors that alternate add up)."""
    if state["Type"] != "Task":
        return EVENTS[state["Type"]]
    retries = sum(r.get("MaxAttempts", DEFAULT_MAX_ATTEMPTS) for r in state.get("Retry", []))
    return TASK_EVENTS + RETRY_EVENTS * retries


def successors(state: dict) -> list[str]:
    """The states a state may go to (Next, Choices, Default, Catch)."""
    found = [state.get("Next"), state.get("Default")]
    found += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
    return [s for s in dict.fromkeys(found) if s]


@dataclass(frozen=True)
class Loop:
    states: frozenset[str]
    entry: str
    counter: str  # "$.poll.count"
    bound: int  # times round, at most


def cycles(states: dict[str, dict]) -> list[frozenset[str]]:
    """The strongly connected parts with a cycle (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for nxt in successors(states[name]):
            if nxt not in index:
                visit(nxt)
                low[name] = min(low[name], low[nxt])
            elif nxt in stack:
                low[name] = min(low[name], index[nxt])
        if low[name] == index[name]:
            part = []
            while True:
                top = stack.pop()
                part.append(top)
                if top == name:
                    break
            if len(part) > 1 or name in successors(states[name]):
                found.append(frozenset(part))

    for name in states:
        if name not in index:
            visit(name)
    return found


def counted_loop(definition: dict, part: frozenset[str]) -> Loop:
    """The loop `part` as a counted loop; AssertionError when it is not one."""
    states = definition["States"]
    entries = {n for s in states if s not in part for n in successors(states[s]) if n in part}
    assert len(entries) == 1, f"loop {sorted(part)} has entries {sorted(entries)}"
    exits = [
        (name, rule)
        for name in part
        for rule in states[name].get("Choices", [])
        if "NumericGreaterThanEquals" in rule and rule["Next"] not in part
    ]
    assert len(exits) == 1, f"loop {sorted(part)} has no single counter exit"
    (check, rule), entry = exits[0], entries.pop()
    counter, bound = rule["Variable"], rule["NumericGreaterThanEquals"]
    rest = part - {name for name in part if _increments(states[name], counter)}
    uncounted = {
        n: {"Type": "Pass", "Choices": [{"Next": m} for m in successors(states[n]) if m in rest]}
        for n in rest
    }
    assert not cycles(uncounted), f"a way round loop {sorted(part)} does not count {counter}"
    rounds = [p for p in _paths(states, entry, part) if p[-1] in part]
    assert all(check in p for p in rounds), f"a way round loop {sorted(part)} skips {check}"
    assert _starts_at_zero(definition, counter), f"{counter} does not start at 0"
    return Loop(part, entry, counter, bound)


def _increments(state: dict, counter: str) -> bool:
    """A Pass state that sets `counter` ($.a.b) to States.MathAdd(counter, 1)."""
    if state["Type"] != "Pass":
        return False
    parent, field = counter.removeprefix("$.").split(".")
    value = state.get("Parameters", {}).get(f"{field}.$", "")
    match = INCREMENT.fullmatch(value)
    return (
        state.get("ResultPath") == f"$.{parent}"
        and bool(match)
        and match.groups()
        == (
            parent,
            field,
        )
    )


def _starts_at_zero(definition: dict, counter: str) -> bool:
    parent, field = counter.removeprefix("$.").split(".")
    return any(
        s["Type"] == "Pass"
        and s.get("ResultPath") == f"$.{parent}"
        and s.get("Parameters", {}).get(field) == 0
        for s in definition["States"].values()
    )


def _paths(states: dict[str, dict], start: str, within: frozenset[str]) -> Iterator[list[str]]:
    """Simple paths from `start` that stay in `within` and end at the first state outside it
    (that state included) or back at `start` (not repeated)."""

    def walk(path: list[str]) -> Iterator[list[str]]:
        for nxt in successors(states[path[-1]]):
            if nxt == start:
                yield path
            elif nxt not in within:
                yield [*path, nxt]
            elif nxt not in path:
                yield from walk([*path, nxt])

    yield from walk([start])


def worst_case_events(definition: dict) -> int:
    """The most history events one execution can write, ExecutionStarted included."""
    states = definition["States"]
    loops = [counted_loop(definition, part) for part in cycles(states)]
    by_entry = {loop.entry: loop for loop in loops}
    inside = {name for loop in loops for name in loop.states}
    memo: dict[str, int] = {}

    def from_state(name: str) -> int:
        """The most events from entering `name` to the end of the execution."""
        if name in memo:
            return memo[name]
        if name in by_entry:
            loop = by_entry[name]
            paths = list(_paths(states, name, loop.states))
            rounds = [p for p in paths if p[-1] in loop.states]
            leaving = [p for p in paths if p[-1] not in loop.states]
            round_events = max(sum(visit_events(states[n]) for n in p) for p in rounds)
            last = max(
                sum(visit_events(states[n]) for n in p[:-1]) + from_state(p[-1]) for p in leaving
            )
            memo[name] = loop.bound * round_events + last
        else:
            assert name not in inside, f"{name} is inside a loop but is not its entry"
            after = [from_state(n) for n in successors(states[name])]
            memo[name] = visit_events(states[name]) + max(after, default=0)
        return memo[name]

    return 1 + from_state(definition["StartAt"])
