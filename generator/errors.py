"""The one exception base class of the generator, and its kinds."""


class GeneratorError(Exception):
    """Base class: every error the generator raises says what was wrong and what to do."""


class SpecError(GeneratorError):
    """The product spec (or a file it names) is missing or breaks its schema."""


class GateError(GeneratorError):
    """A release gate (cfn-lint, checkov, hadolint) found a problem."""
