"""Connectors: the edges that read items from ticketing systems and write KPIs back."""
