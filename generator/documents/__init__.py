"""Pages generated from the spec, the SCP's code and the built template (`make docs` writes
docs/; a test fails when one is stale): `pages` lists them and renders each, `template_facts`
walks the template they describe, `readme` keeps the README's generated tables, `markdown`
renders tables and HTML. Imports generator.template (to build what it describes), never
generator.release."""
