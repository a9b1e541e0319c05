"""A tiny architecture and dataset for engine tests.

``ToyGAN`` is a latent GAN on 3×8×8 images whose parts touch every piece of state exact resume
must restore: BatchNorm running stats, dropout and noise drawn from the global RNG, Adam moments,
a LambdaLR schedule. ``ToyImages`` follows the data contract: ``ds[(index, seed)]`` crops and
flips with a private RNG seeded by ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

import gantransfer
from gantransfer import ExportSpec, GANModel, field

__all__ = ["ToyGAN", "ToyImages", "ensure_registered"]


@dataclass(kw_only=True)
class ToyConfig:
    nz: int = field(8, help="latent size")
    size: int = field(8, help="image size")
    lr: float = field(1e-3, help="Adam learning rate")
    decay_steps: int = field(50, help="steps of the linear LR decay to zero")
    nan_from_step: int | None = field(None, help="losses become NaN from this step (tests)")


class _Generator(nn.Module):
    def __init__(self, nz: int, size: int) -> None:
        super().__init__()
        self.size = size
        self.body = nn.Sequential(
            nn.Linear(nz, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(32, 3 * size * size), nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z).view(-1, 3, self.size, self.size)


class ToyGAN(GANModel):
    """Tiny non-saturating latent GAN used by the engine tests."""

    Config = ToyConfig
    data_kind = "single"

    def __init__(self, config: ToyConfig) -> None:
        super().__init__(config)
        self.nets["g"] = _Generator(config.nz, config.size)
        self.nets["d"] = nn.Sequential(
            nn.Flatten(), nn.Linear(3 * config.size**2, 16), nn.LeakyReLU(0.2), nn.Dropout(0.2),
            nn.Linear(16, 1),
        )

    def optimizer_groups(self) -> dict[str, list[str]]:
        return {"g": ["g"], "d": ["d"]}

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {g: torch.optim.Adam(self.nets[g].parameters(), lr=self.config.lr,
                                    betas=(0.5, 0.999)) for g in ("g", "d")}

    def make_schedulers(self, optimizers, *, steps_per_epoch):
        total = self.config.decay_steps
        return {g: torch.optim.lr_scheduler.LambdaLR(o, lambda s: max(0.0, 1.0 - s / total))
                for g, o in optimizers.items()}

    def train_step(self, batch, ctx):
        real = batch["image"]
        z = torch.randn(real.shape[0], self.config.nz, device=ctx.device)
        poison = float("nan") if (self.config.nan_from_step is not None
                                  and ctx.step >= self.config.nan_from_step) else 1.0
        with ctx.autocast():
            fake = self.nets["g"](z)
            loss_d = (F.softplus(self.nets["d"](fake.detach())).mean()
                      + F.softplus(-self.nets["d"](real)).mean()) * poison
        ctx.optimize("d", loss_d)
        with ctx.frozen("d"), ctx.autocast():
            loss_g = F.softplus(-self.nets["d"](self.nets["g"](z))).mean() * poison
        ctx.optimize("g", loss_g)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}

    def sample_inputs(self, batch, *, n, generator):
        return {"z": torch.randn(n, self.config.nz, generator=generator),
                "real": batch["image"][:n]}

    def sample(self, inputs):
        return {"real": inputs["real"], "fake": self.nets["g"](inputs["z"])}

    def export_targets(self):
        return {"gen": ExportSpec(net="g", input="latent", latent_dim=self.config.nz,
                                  image_size=self.config.size)}


class ToyImages(Dataset):
    """``n`` fixed 3×12×12 images; a key ``(index, seed)`` gives a seeded 8×8 crop and flip."""

    def __init__(self, n: int = 8, *, size: int = 8) -> None:
        self.size = size
        self.images = torch.rand(n, 3, size + 4, size + 4,
                                 generator=torch.Generator().manual_seed(123)) * 2 - 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor]:
        index, seed = key if isinstance(key, tuple) else (key, key)
        rng = torch.Generator().manual_seed(seed)
        top, left = torch.randint(0, 5, (2,), generator=rng).tolist()
        crop = self.images[index, :, top:top + self.size, left:left + self.size]
        if torch.rand((), generator=rng) < 0.5:
            crop = crop.flip(-1)
        return {"image": crop.clone()}


def ensure_registered() -> str:
    """Register ToyGAN as ``"toy"`` in this process (once) and return the name."""
    if "toy" not in gantransfer.list():
        gantransfer.register("toy", ToyGAN)
    return "toy"


def make_toy(**overrides) -> ToyGAN:
    torch.manual_seed(0)
    return gantransfer.get(ensure_registered(), **overrides)
