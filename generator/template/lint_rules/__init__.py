"""Project rules for cfn-lint, one rule per file (E9xxx); loaded with append_rules=[this folder]."""
