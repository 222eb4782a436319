"""Stack outputs, from the spec; every logical ID they name must exist in the template."""

from __future__ import annotations

from typing import Any

from troposphere import GetAtt, Output, Ref, Sub, Template

from generator.errors import SpecError
from generator.spec import OutputSpec, Spec


def _value(t: Template, o: OutputSpec, expressions: dict[str, Any]) -> Any:
    if o.expression is not None:
        return expressions[o.expression]
    if o.sub is not None:
        return Sub(o.sub)
    name, attribute = (o.ref, None) if o.ref is not None else o.get_att.split(".", 1)
    target = t.parameters.get(name) or t.resources.get(name)
    if target is None or (attribute and name in t.parameters):
        raise SpecError(
            f"config/product.yaml $.outputs: {o.name} names {name}, which is not a "
            f"{'resource' if attribute else 'parameter or resource'} of the template; fix the name"
        )
    return GetAtt(target, attribute) if attribute else Ref(target)


def add_outputs(t: Template, spec: Spec, expressions: dict[str, Any]) -> None:
    """Outputs in spec order; `expressions` are the values the spec names by `expression`."""
    for o in spec.outputs:
        if o.condition is not None and o.condition not in t.conditions:
            raise SpecError(
                f"config/product.yaml $.outputs: {o.name} names condition {o.condition}, which "
                "the template does not have; fix the name"
            )
        extra = {"Condition": o.condition} if o.condition else {}
        t.add_output(
            Output(o.name, Description=o.description, Value=_value(t, o, expressions), **extra)
        )
