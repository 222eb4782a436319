"""Stack outputs, from the spec."""

from __future__ import annotations

from troposphere import GetAtt, Output, Ref, Sub, Template

from generator.spec import Spec


def add_outputs(t: Template, spec: Spec) -> None:
    for o in spec.data["outputs"]:
        if "ref" in o:
            value = Ref(o["ref"])
        elif "getAtt" in o:
            value = GetAtt(*o["getAtt"].split(".", 1))
        else:
            value = Sub(o["sub"])
        t.add_output(Output(o["name"], Description=o["description"], Value=value))
