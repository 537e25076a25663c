"""What SMASH needs of each space it searches: an encoder, a weight generator and a main network.

`SMASH_NETWORKS` is a plain registry (space name -> builder), filled by decorators like every other
plugin kind: a space gains SMASH by registering how its architectures are encoded, which of their
weights are generated, and the network that runs them.

The generator is the HyperNet (`strategy.hypernet.conditioning=arch`, SMASH) or a table of freely
learned weights of the same layout (`conditioning=none`): the one-shot control that shares weights
without conditioning them on the architecture (SPOS).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nascli.arch import Arch
from nascli.errors import UserError
from nascli.registry import lookup, registrar
from nascli.spaces.base import DataShape, SearchSpace

SMASH_NETWORKS: dict[str, Any] = {}
register_smash_network = registrar(SMASH_NETWORKS)

CONDITIONINGS = ("arch", "none")

# `strategy.lr=null`: Adam's learning rate measured for each space and generator. membank: 5e-2 (a CPU budget has
# ~2.4k steps where the reference had ~90k at 1e-3; README, SMASH on digits), not re-measured for the free table.
# nb201: chosen by Kendall tau against the benchmark's 12-epoch validation column on 200 selection cells (sample
# seed 11, never the reported cells or the test column) after 30 epochs on CIFAR-10: HyperNet 1e-3 (tau 0.33; 5e-3:
# 0.26), free weights 5e-3 (0.33; 1e-3: 0.12).
DEFAULT_LR = {("membank", "arch"): 5e-2, ("membank", "none"): 5e-2, ("nb201", "arch"): 1e-3, ("nb201", "none"): 5e-3}


@dataclass
class SmashNetworks:
    encoder: Any  # .encode(arch) -> conditioning tensor, .check(arch), .scramble(c, arch)
    generator: nn.Module  # (arch, conditioning, z) -> the generated weights; .noise(generator) -> z
    mainnet: nn.Module  # (x, arch, weights) -> logits
    conditioned: bool  # False: conditioning=none, the generator ignores the architecture

    def weights(self, arch: Arch, z: torch.Tensor, scrambled: bool = False):
        c = self.encoder.encode(arch)
        if scrambled:
            c = self.encoder.scramble(c, arch)
        return self.generator(arch, c, z)

    def hypernet_params(self) -> int:
        return sum(p.numel() for p in self.generator.parameters()) if self.conditioned else 0

    def shared_params(self) -> list[nn.Parameter]:
        """Parameters that every architecture shares (weight decay applies): the main network's and, without
        conditioning, the free weight table's."""
        extra = [] if self.conditioned else list(self.generator.parameters())
        return [*self.mainnet.parameters(), *extra]

    def hypernet_parameters(self) -> list[nn.Parameter]:
        return list(self.generator.parameters()) if self.conditioned else []


def conditioning_of(hyper_cfg) -> str:
    value = str(hyper_cfg.get("conditioning", "arch"))
    if value not in CONDITIONINGS:
        raise UserError(f"strategy.hypernet.conditioning={value} is not a choice; use arch (SMASH's HyperNet) or "
                        "none (freely learned shared weights, the SPOS control)")
    return value


def learning_rate(strategy_cfg, space_name: str) -> float:
    if strategy_cfg.get("lr") is not None:
        return float(strategy_cfg.lr)
    return DEFAULT_LR.get((space_name, conditioning_of(strategy_cfg.hypernet)), 1e-3)


def build_networks(space: SearchSpace, shape: DataShape, hyper_cfg) -> SmashNetworks:
    builder = lookup(SMASH_NETWORKS, space.name, "SMASH space", "SMASH generates weights for these spaces only")
    return builder(space, shape, hyper_cfg, conditioning_of(hyper_cfg) == "arch")


def training_sample(space: SearchSpace, rng: random.Random, ramp: float) -> Arch:
    """One architecture per batch: membank's budget and kernel size anneal upwards over the first part of
    training (SMASH's schedule); a space without such knobs samples uniformly."""
    if space.name == "membank":
        return space.sample(rng, max_budget=0.5 + 0.5 * ramp, max_kernel=3 + round(4 * ramp))
    return space.sample(rng)


@register_smash_network("membank")
def _membank(space: SearchSpace, shape: DataShape, hyper_cfg, conditioned: bool) -> SmashNetworks:
    from nascli.strategies.smash.encoding import Encoder
    from nascli.strategies.smash.hypernet import FreeWeights, HyperNet
    from nascli.strategies.smash.mainnet import SmashMainNet

    encoder = Encoder(space.cfg)
    generator = (HyperNet(encoder, int(hyper_cfg.z_channels), int(hyper_cfg.width), int(hyper_cfg.depth))
                 if conditioned else FreeWeights(encoder))
    return SmashNetworks(encoder, generator,
                         SmashMainNet(encoder, shape, int(space.cfg.search.channels)), conditioned)


@register_smash_network("nb201")
def _nb201(space: SearchSpace, shape: DataShape, hyper_cfg, conditioned: bool) -> SmashNetworks:
    from nascli.strategies.smash.nb201 import (
        NB201Encoder,
        NB201FreeWeights,
        NB201HyperNet,
        NB201Layout,
        SmashNB201Net,
    )

    layout = NB201Layout(int(space.cfg.search.channels), int(space.cfg.search.cells_per_stage))
    generator = (NB201HyperNet(layout, int(hyper_cfg.z_channels), int(hyper_cfg.width), int(hyper_cfg.depth))
                 if conditioned else NB201FreeWeights(layout))
    return SmashNetworks(NB201Encoder(layout), generator, SmashNB201Net(layout, shape), conditioned)
