"""Built-in DCGAN plugin: the ``dcgan`` architecture and its generator/discriminator networks."""

from __future__ import annotations

__all__: list[str] = []
