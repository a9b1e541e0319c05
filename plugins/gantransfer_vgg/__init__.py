"""Built-in VGG plugin: ImageNet VGG16/VGG19 feature stacks as GAN discriminators."""

from __future__ import annotations

__all__: list[str] = []
