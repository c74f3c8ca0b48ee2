"""Stream records -> the audit trail: check, build, plan, write, redact, announce, set aside."""
