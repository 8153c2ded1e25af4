"""``python -m bridge``: the same command line as ``bridge``, for environments where the
console script is not on PATH."""

from __future__ import annotations

from bridge.cli import main

main()
