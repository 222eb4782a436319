"""The CloudFormation template: `build.build_template(spec, code)` assembles it with no I/O from
one module per concern (parameters and Rules, key, storage, network, service, workflow,
monitoring, outputs); `inline` builds each function's `Code.ZipFile` from lambdas/; `custom/`
holds the custom resources' code and `lint_rules/` the cfn-lint rules the release gates run.
Imports generator.spec and generator.errors only."""
