"""The DICOMweb client of a settings object: the Region and the task's credentials it is signed
with (SigV4 for `medical-imaging`, [DICOMWEB] in scp/healthimaging/__init__.py)."""

from __future__ import annotations

from botocore.credentials import Credentials

from scp.healthimaging.client import DicomWebClient, RetryPolicy
from scp.settings import Settings, SettingsError


def signing_context(settings: Settings) -> tuple[str, Credentials]:
    """The Region and the (refreshable) credentials DICOMweb requests are signed with;
    SettingsError when either is missing, so the SCP refuses to start rather than fail every
    StoreDICOM, C-FIND, C-MOVE and C-GET later."""
    import botocore.session

    session = botocore.session.get_session()
    region = settings.healthimaging_region or session.get_config_variable("region")
    if not region:
        raise SettingsError(
            "HEALTHIMAGING_REGION: no Region set, and none from the AWS SDK (AWS_DEFAULT_REGION)"
        )
    credentials = session.get_credentials()
    if credentials is None:
        raise SettingsError(
            "HEALTHIMAGING_DATASTORE_ID: no AWS credentials found to sign HealthImaging "
            "DICOMweb requests (Query/Retrieve, StoreDICOM); give the SCP its role or "
            "credentials, or unset HEALTHIMAGING_DATASTORE_ID"
        )
    return region, credentials


def open_client(settings: Settings, policy: RetryPolicy | None = None) -> DicomWebClient:
    """The one HealthImaging DICOMweb client of these settings (direct stores, Query/Retrieve),
    signed with the task's credentials; `policy` bounds its retries."""
    region, credentials = signing_context(settings)
    return DicomWebClient(
        region,
        settings.healthimaging_datastore_id,
        credentials.get_frozen_credentials,
        endpoint_url=settings.dicomweb_endpoint_url,
        policy=policy,
    )
