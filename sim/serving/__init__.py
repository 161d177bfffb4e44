"""Request-level serving simulator of one inference service (docs/serving.md)."""
