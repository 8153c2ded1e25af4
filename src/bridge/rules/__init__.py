"""The rule language: load YAML with positions, validate, compile, evaluate and explain."""
