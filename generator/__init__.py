"""Everything the release engineer runs, in three packages with one job each:

- `generator.template`: the CloudFormation template, `build_template(spec, code)` (pure), one
  module per CloudFormation concern, the functions' inline code and the cfn-lint project rules.
- `generator.documents`: the pages generated from the spec, the code and the built template
  (conformance statement, security pages, runbook, cost estimate, README tables).
- `generator.release`: the release bundle in dist/ (image, OCI archive, SBOM, locks, Marketplace
  files, gates, publish, snapshot).

Shared by all three: `generator.spec` (the spec read once into typed parts) and
`generator.errors`. Dependencies run template <- documents <- release, never back.
"""
