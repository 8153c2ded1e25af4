"""KPI calculations: pure functions of work items, their history, the rule set and ``now``."""
