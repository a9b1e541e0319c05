"""Image folder datasets, preprocessing, folder checks and procedural demo data (DESIGN §5)."""

from __future__ import annotations

__all__: list[str] = []
