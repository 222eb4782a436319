"""Run our Lambda handlers in-process when moto invokes a function (no Docker here).

moto's Docker-less Lambda backend echoes the payload; this swaps its `invoke` for one that calls
the handler registered under the function's name and reports an exception the way the Lambda Python
runtime does (FunctionError 'Unhandled', errorType = the exception's class name), which is what the
state machine's Retry and Catch match on.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from moto.awslambda_simple.models import LambdaSimpleBackend

Handler = Callable[[dict, object], object]


@contextmanager
def in_process_lambdas(functions: dict[str, Handler]) -> Iterator[list[tuple[str, dict]]]:
    """Dispatch invocations of the named functions to `functions`; yields the invocation log."""
    original = LambdaSimpleBackend.invoke
    invocations: list[tuple[str, dict]] = []

    def invoke(self, function_name, qualifier, body, headers, response_headers) -> bytes:
        name = function_name.rsplit(":", 1)[-1]
        event = json.loads(body or "{}")
        invocations.append((name, event))
        try:
            result = functions[name](event, None)
        except Exception as exc:  # the Lambda runtime turns every exception into a function error
            response_headers["x-amz-function-error"] = "Unhandled"
            result = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
        return json.dumps(result).encode()

    LambdaSimpleBackend.invoke = invoke
    try:
        yield invocations
    finally:
        LambdaSimpleBackend.invoke = original
