"""Rule tests (``bridge rules test``): YAML cases that say what the rules must decide.

A package of its own, above the connectors and beside the CLI, because a case may name an
export file that only the export formats can read; the rule language itself
(:mod:`bridge.rules`) and the KPIs (:mod:`bridge.kpi`) stay free of any connector.
"""
