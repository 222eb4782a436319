"""build_template(spec): the whole CloudFormation template, with no I/O."""

from __future__ import annotations

from troposphere import Template

from generator.monitoring import add_monitoring
from generator.network import add_network
from generator.outputs import add_outputs
from generator.parameters import add_conditions, add_parameters, add_rules
from generator.service import add_service
from generator.spec import Spec
from generator.storage import add_storage
from generator.workflow import add_queues, add_workflow


def build_template(spec: Spec) -> Template:
    product = spec.data["product"]
    t = Template(Description=f"{product['name']} {product['version']}: {product['description']}")
    add_parameters(t, spec)
    add_conditions(t)
    add_rules(t, spec)
    queues = add_queues(t, spec)
    storage = add_storage(t, spec, queues.queue.get_att("Arn"), queues.policy.title)
    network = add_network(t, spec, storage)
    add_service(t, spec, network, storage)
    workflow = add_workflow(t, spec, storage, queues)
    add_monitoring(t, spec, network, queues, workflow)
    add_outputs(t, spec)
    return t
