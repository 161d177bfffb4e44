"""Figures and self-contained HTML reports: pure functions of run tables (no I/O, no engine)."""
