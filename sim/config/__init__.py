"""Scenario configuration: the schema (every default) and the loader (YAML, overrides, errors)."""
