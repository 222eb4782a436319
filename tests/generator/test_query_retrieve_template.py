"""The task role's Query/Retrieve rights (generator/template/service.py): the searches and
GetDICOMInstance, on this stack's data store (or the one DatastoreId names) and its image sets
only."""

from __future__ import annotations

from generator.template.service import QUERY_RETRIEVE_ACTIONS


def test_task_role_may_search_and_retrieve_on_this_data_store_only(template) -> None:
    policies = template["Resources"]["TaskRole"]["Properties"]["Policies"]
    statements = [s for p in policies for s in p["PolicyDocument"]["Statement"]]
    granted = [s for s in statements if "medical-imaging:GetDICOMInstance" in s.get("Action", ())]
    assert len(granted) == 1
    (statement,) = granted
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == sorted(QUERY_RETRIEVE_ACTIONS)
    assert {a.split(":")[1] for a in QUERY_RETRIEVE_ACTIONS} == {
        "SearchDICOMStudies",
        "SearchDICOMSeries",
        "SearchDICOMInstances",
        "GetDICOMInstance",
    }
    store = {
        "Fn::If": [
            "CreateDatastore",
            {"Fn::GetAtt": ["Datastore", "DatastoreArn"]},
            {
                "Fn::Sub": [
                    "arn:${AWS::Partition}:medical-imaging:${AWS::Region}:${AWS::AccountId}"
                    ":datastore/${Id}",
                    {"Id": {"Ref": "DatastoreId"}},
                ]
            },
        ]
    }
    assert statement["Resource"][0] == store
    assert len(statement["Resource"]) == 2  # the data store and its image sets, nothing else
    assert "*" not in str(statement["Resource"]).replace("/*", "")
