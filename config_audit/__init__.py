"""The operator command line: config-audit."""
