"""Contract tests of what tests/fakes/sfn_sdk.py relies on in moto; they fail when moto moves."""

from __future__ import annotations

import inspect

import boto3
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as moto_aws_sdk,
)
from moto.stepfunctions.parser.asl.utils import boto_client

from tests.fakes.pipeline import environment
from tests.fakes.sfn_sdk import SDK_SERVICE, pascal_case_error_names, sdk_model_dir


def test_moto_lacks_the_medical_imaging_error_prefix_and_our_binding_is_scoped():
    assert SDK_SERVICE not in moto_aws_sdk._SERVICE_ERROR_NAMES  # else drop the binding
    with pascal_case_error_names():
        assert moto_aws_sdk._SERVICE_ERROR_NAMES[SDK_SERVICE] == "MedicalImaging"
    assert SDK_SERVICE not in moto_aws_sdk._SERVICE_ERROR_NAMES


def test_moto_sends_sdk_tasks_to_localhost_moto_port():
    source = inspect.getsource(boto_client.boto_client_for)
    assert 'f"http://localhost:{moto_server_port()}"' in source


def test_the_sdk_model_takes_step_functions_pascal_case(tmp_path):
    with environment({"AWS_DATA_PATH": str(sdk_model_dir(tmp_path))}):
        client = boto3.client(SDK_SERVICE, region_name="us-east-1", endpoint_url="http://x")
        shape = client.meta.service_model.operation_model("StartDICOMImportJob").input_shape
        assert {"ClientToken", "DatastoreId", "InputS3Uri", "OutputS3Uri"} <= set(shape.members)
        assert shape.members["ClientToken"].serialization["name"] == "clientToken"
        assert client.meta.service_model.signing_name == "medical-imaging"
