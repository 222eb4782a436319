"""config/contracts.json: the facts scp/, lambdas/ and generator/ must agree on (storage layout,
job table, metric namespace, multipart threshold, the not-a-medical-device notice), read once.
generator/ reads them from here; scp/ and lambdas/ keep constants that
tests/generator/test_contracts.py holds to the same file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from generator.spec import ROOT

CONTRACTS_PATH = ROOT / "config" / "contracts.json"


@dataclass(frozen=True)
class Contracts:
    data: dict[str, Any]

    def prefix(self, name: str) -> str:
        """A storage-layout prefix (incoming, open, batches), with its trailing '/'."""
        return self.data["storageLayout"][name]

    @property
    def job_table(self) -> dict[str, Any]:
        return self.data["jobTable"]

    def index(self, name: str) -> dict[str, str]:
        """A job-table index: {"name", "hash", "range"?} (bySopInstanceUID, byStudyInstanceUID)."""
        return self.job_table["indexes"][name]

    @property
    def metrics_namespace(self) -> str:
        return self.data["metrics"]["namespace"]

    @property
    def stack_metrics_namespace(self) -> str:
        """The namespace in a stack, for Fn::Sub: one per stack, so two stacks never mix."""
        return self.metrics_namespace + "/${AWS::StackName}"

    @property
    def not_a_medical_device(self) -> str:
        """The product overview's notice, word for word."""
        return self.data["notMedicalDevice"]

    @property
    def not_a_medical_device_markdown(self) -> str:
        """The notice as the generated pages and the README show it."""
        return f"**Not a medical device.** {self.not_a_medical_device}"


@cache
def contracts() -> Contracts:
    return Contracts(json.loads(CONTRACTS_PATH.read_text()))
