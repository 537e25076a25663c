"""Score architectures with network proxies, a chunk of architectures per task, on any executor.

A task carries genotypes, not networks: the worker builds each network itself from the run seed, so a
score depends on the architecture alone, never on which worker ran it or in which order. One network is
built per architecture and shared by every requested proxy (through a Probe), and its size is counted
from that same network when the proxies see the retrain-size network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import OmegaConf

from nascli.latency import latency_settings, measure_latency_ms
from nascli.latency_table import LatencyTable
from nascli.measure import arch_cost
from nascli.proxies.base import PROXIES, load_proxies
from nascli.proxies.probe import Probe
from nascli.spaces.base import DataShape, get_space


@dataclass
class ScoringSetup:
    """What every task shares (sent to each worker once)."""

    space_name: str
    space_cfg: dict
    network: str  # "retrain" or "search": the size node of the space config the proxies see
    shape: DataShape
    proxies: list[str]  # network proxies, in column order
    batch_sizes: dict[str, int | None]  # proxy -> images per batch (None: data-free)
    data: dict[int, list[tuple[torch.Tensor, torch.Tensor]]]  # batch size -> training batches
    seed: int
    device: str = "cpu"
    channels_last: bool = False  # the networks and data in NHWC (measured ~40% faster for NB201 on the CPU)
    latency: dict | None = None  # the latency proxy's `latency:` node (method, batch, repeats, warmup)
    latency_table: dict | None = None  # latency.method=table: the table's entries, timed by the parent


_SPACES: dict[str, Any] = {}  # the space object of the last setup seen, per process
_SIZES: dict[str, dict[str, int]] = {}  # size_key -> params/flops at the retrain size, per process and setup


def score_chunk(setup: ScoringSetup, genotypes: list[dict]) -> list[dict]:
    """One row per genotype: each proxy's score (NaN + `<proxy>_error` when it failed), params, flops,
    `degenerate` (the output ignores the input, when a data pass could tell) and status."""
    load_proxies()
    # The counts depend on the data's shape too (the stem reads its channels, the classifier its classes): a
    # process that scores two datasets with one space config must not reuse the first one's counts.
    key = repr((setup.space_name, setup.space_cfg, setup.shape))
    if key not in _SPACES:
        _SPACES.clear()
        _SIZES.clear()
        _SPACES[key] = get_space(setup.space_name, OmegaConf.create(setup.space_cfg))
    space = _SPACES[key]
    size = space.cfg[setup.network]
    proxies = [PROXIES[name] for name in setup.proxies]
    device = torch.device(setup.device)
    layout = torch.channels_last if setup.channels_last else torch.contiguous_format
    data = {bs: [(x.to(device).contiguous(memory_format=layout), y.to(device)) for x, y in batches]
            for bs, batches in setup.data.items()}
    clock = _latency_clock(setup, space, device)
    rows = []
    for genotype in genotypes:
        arch = space.make(genotype)
        torch.manual_seed(setup.seed)
        model = space.build(arch, setup.shape, size).to(device, memory_format=layout)
        size_key = space.size_key(arch) if setup.network == "retrain" else None
        probe = Probe(model, data, setup.shape, proxies, setup.batch_sizes, _SIZES.get(size_key), clock, setup.seed)
        row: dict[str, Any] = {}
        ok = True
        for proxy in proxies:
            try:
                value = float(proxy.fn(probe, setup.batch_sizes[proxy.name]))
                if not math.isfinite(value):
                    raise ArithmeticError(f"{proxy.name} is {value}")
            except (RuntimeError, ArithmeticError, torch.linalg.LinAlgError) as e:
                row[f"{proxy.name}_error"] = str(e).splitlines()[0][:200]
                value, ok = float("nan"), False
            row[proxy.name] = value
        if size_key is not None:
            cost = _SIZES.setdefault(size_key, probe.size())
        else:
            cost = arch_cost(space, arch, setup.shape)
        row.update({"params": cost["params"], "flops": cost["flops"]})
        degenerate = probe.degenerate()
        if degenerate is not None:
            row["degenerate"] = int(degenerate)
        row["status"] = "ok" if ok else "failed"
        rows.append(row)
    return rows


def _latency_clock(setup: ScoringSetup, space, device: torch.device):
    """How the latency proxy gets a network's milliseconds: timed, or summed from the parent's table (an entry
    the table lacks is timed here and kept for this process only)."""
    settings = latency_settings(setup.latency)
    if setup.latency_table is None:
        return lambda model, shape: measure_latency_ms(model, shape, settings)
    table = LatencyTable(space, settings, device, setup.channels_last).load_state(setup.latency_table)
    return table.predict_ms
