"""Image history buffer (Shrivastava et al. 2017), as used by CycleGAN (Zhu et al. 2017, Sec. 4).

The discriminator is updated with a mix of the newest fakes and fakes from earlier steps, which
reduces oscillation. Semantics of the official ``ImagePool``: while the pool is not full, every
image is stored and returned; once full, with probability 0.5 a random stored image is returned
and replaced by the new one, otherwise the new image is returned. ``size=0`` passes through.

The random choices are drawn from torch's global CPU generator, whatever the images' device:
deciding on the host needs no device-to-host round trip (a GPU step keeps running while the pool
picks), and CPU draws give the same sequence as before on CPU runs. The engine saves and restores
that generator, and the stored images are part of :meth:`state_dict`, so a resumed run draws the same
images as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["ImagePool"]


class ImagePool:
    """A buffer of up to ``size`` previously generated images."""

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"pool_size must be >= 0, got {size}")
        self.size = size
        self.images: list[Tensor] = []  # each 1×C×H×W, detached

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """Return a batch the size of ``images`` (``N×C×H×W``) drawn per the rule above."""
        if self.size == 0:
            return images.detach()
        out: list[Tensor] = []
        for image in images.detach():
            image = image.unsqueeze(0).clone()  # own storage: do not keep the whole batch alive
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
                continue
            # CPU draws: .item() on a CPU tensor does not wait for the GPU.
            if torch.rand(()).item() > 0.5:
                idx = int(torch.randint(0, self.size, ()).item())
                old = self.images[idx].to(image.device)
                self.images[idx] = image
                out.append(old)
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        """Plain data (an int and a list of tensors) for checkpoints."""
        return {"size": self.size, "images": [t.detach().cpu() for t in self.images]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output. Raises ``ValueError`` on a size mismatch."""
        if int(state["size"]) != self.size:
            raise ValueError(
                f"saved image pool has size {state['size']} but this model's pool_size is "
                f"{self.size}; build the model with pool_size={state['size']} to resume"
            )
        self.images = [t.clone() for t in state["images"]]
