"""The one exception type of the benchmark package."""


class BenchError(Exception):
    """A benchmark could not run or its result cannot be trusted; the message says what to do."""
