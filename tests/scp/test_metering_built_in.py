"""The product code built into the image (scp/marketplace.json) wins over the setting, so a
buyer who deletes MARKETPLACE_PRODUCT_CODE from the task definition still meters."""

from __future__ import annotations

import json

from scp.metering import product_code


def test_built_in_code_is_used_whatever_the_setting(tmp_path):
    built_in = tmp_path / "marketplace.json"
    built_in.write_text(json.dumps({"productCode": "builtin1234567890abcdefgh"}))
    assert product_code("", built_in) == "builtin1234567890abcdefgh"
    assert product_code("other", built_in) == "builtin1234567890abcdefgh"


def test_without_a_built_in_code_the_setting_decides(tmp_path):
    assert product_code("", tmp_path / "missing.json") == ""
    assert product_code("fromsetting", tmp_path / "missing.json") == "fromsetting"
