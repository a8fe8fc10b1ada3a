"""Operations: the daily schedule, freshness/quality/model checks, alerts, late-label recomputes.

Wired by `prviz.monitoring.definitions.build_monitoring`; see docs/operations.md.
"""
