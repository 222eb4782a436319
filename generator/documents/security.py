"""SECURITY.md: how to report a vulnerability privately (the seller contact the spec holds, so
the route works from the release bundle, where no repository is named), what we answer and when."""

from __future__ import annotations

from generator.contracts import contracts
from generator.documents.markdown import header, table
from generator.spec import Spec


def security_policy(spec: Spec) -> str:
    """SECURITY.md (the repository's root; docs/SECURITY.md in the bundle)."""
    contact = spec.seller_contact
    return "\n".join(
        [
            header("generator/documents/security.py", "config/product.yaml (product:)"),
            f"# Security policy: {spec.name}",
            "",
            "StoreSCP carries medical images, so we treat every security report as urgent. This "
            "page says how to reach us privately, what we answer, and when.",
            "",
            "## Reporting a vulnerability",
            "",
            f"- **Privately, never in a public forum.** E-mail <{contact}> with a subject "
            "starting `SECURITY:`, or write to the seller contact on the product's AWS "
            'Marketplace listing ("Support information") with the same subject.',
            f"- Tell us the release (this one: {spec.version}; stack output or image tag), what "
            "you did, what happened, and how to reproduce it. The SCP's logs can be sent (see "
            "[data-protection.md](docs/data-protection.md) for what they hold); **never send "
            "images or any patient data**, and test only against your own stack.",
            "- A problem in an AWS service itself goes to AWS: "
            "<https://aws.amazon.com/security/vulnerability-reporting/>. A problem in a library "
            "we ship (pynetdicom, pydicom, boto3, the base image) goes to its maintainers; "
            "please tell us as well, so we can ship the fix.",
            "",
            "## What we answer, and when",
            "",
            *table(
                ("Step", "Within"),
                [
                    ("Acknowledge your report, with a tracking reference", "2 business days"),
                    (
                        "Our assessment: confirmed or not, severity (CVSS v3.1), affected releases",
                        "5 business days",
                    ),
                    ("Fixed release for a critical finding", "14 days"),
                    ("Fixed release for a high finding", "30 days"),
                    ("Fixed release for a medium or low finding", "90 days, or the next release"),
                ],
            ),
            "We keep you informed at least weekly until the fix ships, agree a disclosure date "
            "with you (normally when the fix is released, at the latest 90 days after your "
            "report), publish an advisory naming the affected releases and the fix in "
            "[CHANGELOG.md](CHANGELOG.md), and credit you if you wish.",
            "",
            "## Supported releases",
            "",
            "Security fixes are made for the latest release, and for the release before it "
            "during 90 days after a new one is published "
            "([support-policy.md](docs/support-policy.md)). Update a stack by applying the new "
            "release's template ([deployment-guide.md](docs/deployment-guide.md)).",
            "",
            "## What the product does for security",
            "",
            "How the stack protects images and which flows it allows are generated from the "
            "template it ships: [shared-responsibility.md](docs/shared-responsibility.md) "
            "(including what leaves your account), [network-flows.md](docs/network-flows.md), "
            "[data-protection.md](docs/data-protection.md), and for DICOM, "
            "[conformance-statement.md](docs/conformance-statement.md).",
            "",
            contracts().not_a_medical_device,
            "",
        ]
    )
