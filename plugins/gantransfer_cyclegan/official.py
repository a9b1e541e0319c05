"""Load checkpoints of the official CycleGAN code (junyanz/pytorch-CycleGAN-and-pix2pix).

Our networks use the official layer order and attribute names, so an official state dict loads
with no key renaming. This module only cleans what older or wrapped checkpoints carry:

* a ``module.`` prefix on every key (saved from ``DataParallel``): stripped;
* InstanceNorm running-stat keys (``running_mean``, ``running_var``, ``num_batches_tracked``)
  from PyTorch < 0.4 checkpoints, where our InstanceNorm tracks nothing: dropped, with a note;
* with ``norm="none"`` the official convs whose bias follows the norm rule (``use_bias =
  norm is InstanceNorm``) have none, while ours do (a conv without a norm after it gets a bias
  here): exactly those biases are set to zero when absent, which gives the official output. Any
  other missing key (a bias of an instance-norm network, the output conv's bias, which the
  official code always has) is an error listing the missing keys.

It also infers the network options (netG, ngf, norm, dropout, channels; ndf, n_layers_D) from
the weights, so ``gtx import-cyclegan latest_net_G_A.pth -o out.pt`` needs no flags.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gantransfer.torchfile import load_tensors

__all__ = [
    "build_official_model",
    "clean_state_dict",
    "infer_discriminator_options",
    "infer_generator_options",
    "load_official_generator",
    "load_official_weights",
    "official_bias_gaps",
    "read_state_dict",
]

log = logging.getLogger(__name__)

_STAT_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def read_state_dict(source: str | os.PathLike[str] | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A state dict from a ``.pth`` path (loaded with ``weights_only=True``) or a mapping, with any
    ``module.`` prefix removed.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is not a
    state dict of tensors.
    """
    if isinstance(source, Mapping):
        state = dict(source)
        where = "the given state dict"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"official checkpoint {path} does not exist")
        # Names the file and what it is; a file that would run code is refused (a ValueError).
        state = load_tensors(path, expected="an official CycleGAN weights file "
                             "(latest_net_G_A.pth-style, a state dict of tensors)")
        where = str(path)
    if hasattr(state, "_metadata"):
        state = dict(state)
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{where} is not a state dict of tensors (got {type(state).__name__}); "
                         "expected the output of torch.save(net.state_dict())")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def official_bias_gaps(net: nn.Module, batch_twin: nn.Module) -> set[str]:
    """Conv bias keys of ``net`` (built with ``norm="none"``) that official ``norm="none"``
    files do not have: the convs whose bias follows the norm rule, found as the conv biases
    that the same network built with ``norm="batch"`` (``batch_twin``) lacks."""
    return _conv_biases(net) - _conv_biases(batch_twin)


def _conv_biases(net: nn.Module) -> set[str]:
    convs = (nn.Conv2d, nn.ConvTranspose2d)
    return {f"{n}.bias" for n, m in net.named_modules()
            if isinstance(m, convs) and m.bias is not None}


def clean_state_dict(state: Mapping[str, Tensor], net: nn.Module, *, name: str = "network",
                     bias_gaps: set[str] | frozenset[str] = frozenset()) -> dict[str, Tensor]:
    """Adapt an official state dict to ``net``: drop legacy norm statistics ``net`` does not have,
    and zero-fill the conv biases in ``bias_gaps`` (see :func:`official_bias_gaps`; official
    ``norm="none"`` files lack them) when absent. Nothing else is filled: other missing keys
    stay missing, for :func:`load_official_weights` to report."""
    target = net.state_dict()
    state = dict(state)
    stale = [k for k in state if k.endswith(_STAT_SUFFIXES) and k not in target]
    if stale:
        log.info("%s: dropped %d InstanceNorm running-stat key(s) from an old checkpoint "
                 "(InstanceNorm tracks no statistics): %s", name, len(stale), ", ".join(stale[:4]))
        for k in stale:
            del state[k]
    missing_bias = [k for k in target if k in bias_gaps and k not in state
                    and k[: -len("bias")] + "weight" in state]
    if missing_bias:
        log.info("%s: %d conv bias(es) absent from the checkpoint (official norm='none' convs "
                 "have none) set to zero", name, len(missing_bias))
        for k in missing_bias:
            state[k] = torch.zeros_like(target[k])
    return state


def load_official_weights(net: nn.Module, source: Any, *, name: str = "network",
                          bias_gaps: set[str] | frozenset[str] = frozenset()) -> nn.Module:
    """Load an official state dict (path or mapping) into ``net`` strictly; returns ``net``.

    ``bias_gaps``: conv biases official ``norm="none"`` files omit (:func:`official_bias_gaps`),
    zero-filled when absent.

    Raises ``ValueError`` naming missing/unexpected keys or mismatched shapes, with a hint.
    """
    state = clean_state_dict(read_state_dict(source), net, name=name, bias_gaps=bias_gaps)
    target = net.state_dict()
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs network {tuple(target[k].shape)}"
              for k in sorted(set(state) & set(target)) if state[k].shape != target[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
            parts.append(f"missing keys {', '.join(missing[:8])}{more}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}"
                         f"{' ...' if len(unexpected) > 5 else ''}")
        if shapes:
            parts.append("shape mismatches " + "; ".join(shapes[:3]))
        raise ValueError(f"{name}: the official weights do not fit the network ("
                         + "; ".join(parts) + "). Check netG/ngf/norm/channels (or ndf/"
                         "n_layers_D/discriminator) match the options the model was trained with.")
    net.load_state_dict(state, strict=True)
    return net


def infer_generator_options(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """netG, ngf, norm, in_channels, out_channels (and dropout for ResNets) read from the weights.

    Raises ``ValueError`` when the keys match neither official generator layout.
    """
    keys = set(state)
    if "model.1.weight" in keys and any(".conv_block." in k for k in keys):
        blocks = {int(m.group(1)) for k in keys if (m := re.match(r"model\.(\d+)\.conv_block", k))}
        n = len(blocks)
        if n not in (6, 9):
            raise ValueError(f"official ResNet generator with {n} blocks: only 6 and 9 are "
                             "registered (resnet_6blocks, resnet_9blocks)")
        first = state["model.1.weight"]
        convs = [int(m.group(1)) for k in keys if (m := re.fullmatch(r"model\.(\d+)\.weight", k))
                 and state[k].dim() == 4]
        last = state[f"model.{max(convs)}.weight"]
        norm = ("batch" if "model.2.weight" in keys
                else "instance" if "model.1.bias" in keys else "none")
        return {"netG": f"resnet_{n}blocks", "ngf": first.shape[0], "norm": norm,
                "in_channels": first.shape[1], "out_channels": last.shape[0],
                "dropout": any(".conv_block.6." in k for k in keys)}
    if "model.model.0.weight" in keys:
        depth = 0
        for d in range(5, 13):
            if "model.model.1" + ".model.3" * (d - 2) + ".model.1.weight" in keys:
                depth = d
        if depth not in (7, 8):
            raise ValueError(f"official U-Net generator with {depth} downsamplings: only 7 "
                             "and 8 are registered (unet_128, unet_256)")
        first = state["model.model.0.weight"]
        norm = ("batch" if "model.model.1.model.2.weight" in keys
                else "instance" if "model.model.0.bias" in keys else "none")
        return {"netG": "unet_128" if depth == 7 else "unet_256", "ngf": first.shape[0],
                "norm": norm, "in_channels": first.shape[1],
                "out_channels": state["model.model.3.weight"].shape[1]}
    raise ValueError("the weights match no official generator layout (expected keys such as "
                     "'model.1.weight' + 'model.10.conv_block.1.weight' for a ResNet or "
                     "'model.model.0.weight' for a U-Net)")


def infer_discriminator_options(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """discriminator, ndf, n_layers_D (patchgan), norm and channels read from official weights."""
    keys = set(state)
    if "net.0.weight" in keys:
        norm = ("batch" if "net.3.weight" in keys
                else "instance" if "net.2.bias" in keys else "none")
        return {"discriminator": "pixel", "ndf": state["net.0.weight"].shape[0], "norm": norm,
                "in_channels": state["net.0.weight"].shape[1]}
    if "model.0.weight" in keys:
        convs = sorted(int(m.group(1)) for k in keys
                       if (m := re.fullmatch(r"model\.(\d+)\.weight", k)) and state[k].dim() == 4)
        norm = ("batch" if "model.3.weight" in keys
                else "instance" if len(convs) > 1 and f"model.{convs[1]}.bias" in keys else "none")
        return {"discriminator": "patchgan", "ndf": state["model.0.weight"].shape[0],
                "n_layers_D": len(convs) - 2, "norm": norm,
                "in_channels": state["model.0.weight"].shape[1]}
    raise ValueError("the weights match no official discriminator layout (expected "
                     "'model.0.weight' for a PatchGAN or 'net.0.weight' for a pixel "
                     "discriminator)")


def load_official_generator(source: Any, **options: Any) -> nn.Module:
    """A registered generator holding official weights (path or state dict).

    Options (``netG``, ``ngf``, ``norm``, ``dropout``, ``in_channels``, ``out_channels``) are
    inferred from the weights; explicit ``options`` win.

        >>> g = load_official_generator("latest_net_G_A.pth")  # doctest: +SKIP
    """
    import gantransfer

    state = read_state_dict(source)
    opts = {**infer_generator_options(state), **options}
    netG = opts.pop("netG")
    net = gantransfer.get_network(netG, **opts)
    gaps = (official_bias_gaps(net, gantransfer.get_network(netG, **{**opts, "norm": "batch"}))
            if opts.get("norm") == "none" else set())
    return load_official_weights(net, state, name=f"official generator ({netG})", bias_gaps=gaps)


def build_official_model(cls: type, *, g_a: Any = None, g_b: Any = None, d_a: Any = None,
                         d_b: Any = None, **overrides: Any) -> Any:
    """Implementation of :meth:`CycleGAN.load_official` (see there for the name mapping)."""
    sources = {"g_ab": g_a, "g_ba": g_b, "d_b": d_a, "d_a": d_b}
    states = {net: read_state_dict(src) for net, src in sources.items() if src is not None}
    if not states:
        raise ValueError("load_official needs at least one of g_a, g_b, d_a, d_b")
    inferred: dict[str, Any] = {}
    for net in ("d_a", "d_b"):
        if net in states:
            opts = infer_discriminator_options(states[net])
            channels = opts.pop("in_channels")
            # d_a judges domain A (in_channels), d_b domain B (out_channels).
            opts["in_channels" if net == "d_a" else "out_channels"] = channels
            inferred.update(opts)
    for net in ("g_ba", "g_ab"):  # g_ab last: its reading of the channels wins
        if net in states:
            opts = infer_generator_options(states[net])
            if net == "g_ba":
                opts["in_channels"], opts["out_channels"] = opts["out_channels"], opts["in_channels"]
            inferred.update(opts)
    config = cls.Config(**{**inferred, **overrides})
    model = cls(config)
    model.arch_name = "cyclegan"
    twin = cls(cls.Config(**{**inferred, **overrides, "norm": "batch"})) if config.norm == "none" \
        else None
    for net, state in states.items():
        gaps = official_bias_gaps(model.nets[net], twin.nets[net]) if twin is not None else set()
        load_official_weights(model.nets[net], state, bias_gaps=gaps, name=f"{net} (official "
                              f"{ {'g_ab': 'G_A', 'g_ba': 'G_B', 'd_b': 'D_A', 'd_a': 'D_B'}[net] })")
    fresh = sorted(set(model.nets) - set(states))
    if fresh:
        log.info("official import: %s keep their fresh initialisation", ", ".join(fresh))
    return model.eval()
