"""Per-op latency lookup tables (ProxylessNAS, FBNet): an architecture's latency without timing its network.

Each candidate op is timed once as a stand-alone module at every (channels, stride, input size) where a
space's networks run it. An architecture's predicted latency is the sum of its ops' entries plus the fixed
part of its network (stem, cell preprocessing, node sums, concatenation, classifier), which is timed once per
distinct skeleton with every op replaced by a stand-in that costs nothing. Summing assumes ops run one after
another, which is how eager PyTorch runs them on one stream; bench/latency_table.py measures how well the sum
orders and matches end-to-end timings.

A table is a measurement of one device, so it is cached under the run root, one file per space, device,
torch version, thread count, batch, dtype and memory format: searches and rank runs under the same root read
the same numbers (and so write the same latency columns); another machine or setting measures its own.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn

from nascli.atomic import write_text
from nascli.errors import UserError
from nascli.latency import (
    LatencySettings,
    device_name,
    interleaved_ms,
    key_digest,
    latency_settings,
    measure_latency_ms,
    read_keyed,
)
from nascli.spaces.base import DataShape, SearchSpace
from nascli.spaces.reference_kernels import KERNELS_VERSION

CACHE_DIR = Path(".cache") / "latency"  # under the run root


@dataclass
class EdgeSlot:
    """Where one op of a network runs: enough to look it up (and to replace it by a stand-in)."""

    op: str
    channels: int
    stride: int
    height: int
    width: int
    out_shape: tuple[int, ...]

    @property
    def key(self) -> str:
        return f"{self.op}|c{self.channels}|s{self.stride}|{self.height}x{self.width}"


class _StandIn(nn.Module):
    """Returns zeros of the replaced op's output shape: the network's fixed part runs, the op costs nothing."""

    def __init__(self, out: torch.Tensor):
        super().__init__()
        self.out = out

    def forward(self, x):
        return self.out


def cell_edges(net: nn.Module) -> list[tuple[nn.ModuleList, int, str]]:
    """(edge list, index, op name) of every candidate op in a network (cells expose `edges` and `op_names`)."""
    found = [(m.edges, k, name) for m in net.modules() if hasattr(m, "op_names")
             for k, name in enumerate(m.op_names)]
    if not found and not any(hasattr(m, "op_names") for m in net.modules()):
        raise UserError("this space's networks have no cell edges, so they have no per-op latency table; "
                        "time whole networks with latency.method=measured")
    return found


@dataclass
class LatencyTable:
    """Op latencies (ms) by slot key and fixed-part latencies by skeleton signature, for one setting."""

    space: SearchSpace
    settings: LatencySettings
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    channels_last: bool = False
    path: Path | None = None
    ops: dict[str, float] = field(default_factory=dict)
    skeletons: dict[str, float] = field(default_factory=dict)
    measured: int = 0  # entries timed by this process (the rest came from the cache)

    @property
    def layout(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def meta(self) -> dict:
        return {"space": self.space.name, "device": self.device.type, "device_name": device_name(self.device),
                "torch": torch.__version__, "threads": torch.get_num_threads(), "batch": self.settings.batch,
                "repeats": self.settings.repeats, "warmup": self.settings.warmup, "dtype": "bf16 autocast" if self.settings.bf16 else "float32",
                "memory_format": "channels_last" if self.channels_last else "contiguous", "statistic": "median",
                "kernels": KERNELS_VERSION}

    # -- the cache -------------------------------------------------------------------------
    @classmethod
    def cached(cls, space: SearchSpace, settings: LatencySettings, run_root: Path | None, device: torch.device,
               channels_last: bool = False) -> LatencyTable:
        """The table of this setting under `run_root` (None: not cached, timed in this process only)."""
        table = cls(space, settings, torch.device(device), channels_last)
        if run_root is None:
            return table
        meta = table.meta()
        slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{space.name}-{meta['device']}-t{meta['threads']}-b{meta['batch']}")
        table.path = Path(run_root) / CACHE_DIR / f"{slug}-{key_digest(meta, 10)}.json"
        saved = read_keyed(table.path, "meta", meta)
        if saved is not None:  # else no cache yet, or a damaged one: measured again and rewritten
            table.ops, table.skeletons = dict(saved["ops"]), dict(saved["skeletons"])
        return table

    def save(self) -> None:
        if self.path is None or not self.measured:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text(self.path, json.dumps({"meta": self.meta(), "ops": dict(sorted(self.ops.items())),
                                                 "skeletons": dict(sorted(self.skeletons.items()))}, indent=1))
        self.measured = 0

    # -- entries ---------------------------------------------------------------------------
    def _input(self, channels: int, height: int, width: int) -> torch.Tensor:
        x = torch.randn(self.settings.batch, channels, height, width, generator=torch.Generator().manual_seed(0))
        return x.to(self.device).contiguous(memory_format=self.layout)

    def _op_run(self, slot: EdgeSlot):
        module = self.space.op_module(slot.op, slot.channels, slot.stride).to(self.device, memory_format=self.layout)
        module.eval()
        x = self._input(slot.channels, slot.height, slot.width)
        return lambda: module(x)

    def _skeleton_run(self, net: nn.Module, shape: DataShape, slots: list[EdgeSlot]):
        """`net` with every op replaced by a zero stand-in (in place: pass a network of your own)."""
        for (edge_list, k, _), slot in zip(cell_edges(net), slots, strict=True):
            edge_list[k] = _StandIn(torch.zeros(slot.out_shape, device=self.device).contiguous(memory_format=self.layout))
        net.eval()
        x = self._input(shape.channels, shape.height, shape.width)
        return lambda: net(x)

    @torch.no_grad()
    def _measure(self, runs: dict[str, object], into: dict[str, float]) -> None:
        """Time missing entries together, in rounds (latency.interleaved_ms: drift slows them all alike)."""
        runs = {k: r for k, r in runs.items() if k not in into}
        if runs:
            into.update(zip(runs, interleaved_ms(list(runs.values()), self.device, self.settings), strict=True))
            self.measured += len(runs)

    def ensure(self, slots) -> None:
        """Time the missing ones of (op, channels, stride, height, width) slots, in one set of rounds."""
        missing = {}
        for op, c, stride, h, w in slots:
            slot = EdgeSlot(op, c, stride, h, w, ())
            if slot.key not in self.ops and slot.key not in missing:
                missing[slot.key] = self._op_run(slot)
        self._measure(missing, self.ops)

    def op_ms(self, op: str, channels: int, stride: int, height: int, width: int) -> float:
        self.ensure([(op, channels, stride, height, width)])
        return self.ops[EdgeSlot(op, channels, stride, height, width, ()).key]

    @torch.no_grad()
    def slots(self, net: nn.Module, shape: DataShape) -> tuple[list[EdgeSlot], str]:
        """Every op's slot in `net`, in order, and the signature of the rest of the network, from one forward."""
        edges = cell_edges(net)
        inside = {id(m) for edge_list, k, _ in edges for m in edge_list[k].modules()}
        seen: dict[int, EdgeSlot] = {}
        skeleton: list[str] = []

        def on_edge(index, name):
            def hook(module, inputs, output):
                x = inputs[0]
                seen[index] = EdgeSlot(name, int(x.shape[1]), 2 if output.shape[-1] < x.shape[-1] else 1,
                                       int(x.shape[-2]), int(x.shape[-1]), tuple(output.shape))
            return hook

        def on_leaf(module, inputs, output):
            shapes = [tuple(t.shape) for t in inputs if isinstance(t, torch.Tensor)]
            skeleton.append(f"{module!r}{shapes}")

        handles = [edge_list[k].register_forward_hook(on_edge(i, name)) for i, (edge_list, k, name) in enumerate(edges)]
        handles += [m.register_forward_hook(on_leaf) for m in net.modules()
                    if id(m) not in inside and not list(m.children())]
        was_training = net.training
        net.eval()
        try:
            net(self._input(shape.channels, shape.height, shape.width))
        finally:
            net.train(was_training)
            for h in handles:
                h.remove()
        if len(seen) != len(edges):
            raise RuntimeError(f"{len(edges) - len(seen)} ops of the network never ran; no latency to predict")
        ordered = [seen[i] for i in range(len(edges))]
        signature = hashlib.sha1(("\n".join(skeleton) + repr([s.out_shape for s in ordered])).encode()).hexdigest()
        return ordered, signature[:16]

    def _fixed(self, net: nn.Module, shape: DataShape, slots: list[EdgeSlot], signature: str) -> float:
        """The fixed part of `net` (timed on a copy of it the first time its skeleton is seen)."""
        if signature not in self.skeletons:
            self._measure({signature: self._skeleton_run(copy.deepcopy(net), shape, slots)}, self.skeletons)
        return self.skeletons[signature]

    def predict_ms(self, net: nn.Module, shape: DataShape) -> float:
        """Predicted latency of `net` (built on this table's device): fixed part + the sum of its ops."""
        slots, signature = self.slots(net, shape)
        fixed = self._fixed(net, shape, slots, signature)
        self.ensure((s.op, s.channels, s.stride, s.height, s.width) for s in slots)
        return fixed + sum(self.ops[s.key] for s in slots)

    def predict_many(self, shape: DataShape, size, archs, every_op: bool = False) -> list[float]:
        """Predicted latency of each of `archs` built at `size`. What the table lacks is timed first, in one set
        of rounds; `every_op` also times every op of the space at every slot seen (a table that covers the
        space, made before parallel work so that workers find what they need)."""
        ops: dict[str, object] = {}
        skeletons: dict[str, object] = {}
        found = []
        size_json = json.dumps(OmegaConf.to_container(size, resolve=True) if OmegaConf.is_config(size) else dict(size),
                               sort_keys=True)
        for arch in archs:
            key = (self.space.name, self.space.size_key(arch), shape, size_json, str(self.device), str(self.layout),
                   self.settings.batch)
            net = None
            if key not in _SLOTS:
                if len(_SLOTS) >= 100_000:
                    _SLOTS.clear()
                net = self._build(arch, shape, size)
                _SLOTS[key] = self.slots(net, shape)
            slots, signature = _SLOTS[key]
            found.append((slots, signature))
            if signature not in self.skeletons and signature not in skeletons:
                skeletons[signature] = self._skeleton_run(net or self._build(arch, shape, size), shape, slots)
            wanted = slots
            if every_op:
                wanted = slots + [EdgeSlot(op, c, stride, h, w, ()) for c, stride, h, w in
                                  sorted({(s.channels, s.stride, s.height, s.width) for s in slots})
                                  for op in self.space.slot_ops]
            for slot in wanted:
                if slot.key not in self.ops and slot.key not in ops:
                    ops[slot.key] = self._op_run(slot)
        # One set of rounds for both, so a slow spell cannot land on the fixed parts alone.
        both = {**{("skeleton", k): r for k, r in skeletons.items()}, **{("op", k): r for k, r in ops.items()}}
        timed: dict = {}
        self._measure(both, timed)
        for (kind, key), ms in timed.items():
            (self.skeletons if kind == "skeleton" else self.ops)[key] = ms
        return [self.skeletons[sig] + sum(self.ops[s.key] for s in slots) for slots, sig in found]

    def _build(self, arch, shape: DataShape, size) -> nn.Module:
        torch.manual_seed(0)
        return self.space.build(arch, shape, size).to(self.device, memory_format=self.layout)

    def fixed_ms(self, shape: DataShape, size, arch) -> float:
        """The fixed part (everything but the ops) of `arch`'s network at `size`."""
        torch.manual_seed(0)
        net = self.space.build(arch, shape, size).to(self.device, memory_format=self.layout)
        return self._fixed(net, shape, *self.slots(net, shape))

    # -- between processes -----------------------------------------------------------------
    def state(self) -> dict:
        return {"ops": dict(self.ops), "skeletons": dict(self.skeletons)}

    def load_state(self, state: dict) -> LatencyTable:
        self.ops.update(state.get("ops", {}))
        self.skeletons.update(state.get("skeletons", {}))
        return self


# The slots of a network found by one forward, remembered per process by the space's size_key: networks of one
# size key hold the same ops at the same shapes (NB201: op counts per cell), so their slots sum to the same
# prediction. Building and running each network took 0.1 s, most of a table-evaluated search's time.
_SLOTS: dict[tuple, tuple[list, str]] = {}

METHODS = ("measured", "table", "none")


def check_method(method: str) -> str:
    if method not in METHODS:
        raise UserError(f"latency.method={method} is not a way to get latency; use one of: {', '.join(METHODS)}")
    return method


def has_table(space: SearchSpace) -> bool:
    """Whether the space's networks are built from candidate ops on cell edges (so a per-op table applies)."""
    return type(space).op_module is not SearchSpace.op_module


def latency_column(archs, space: SearchSpace, shape: DataShape, size, cfg, run_root: Path,
                   device: torch.device, channels_last: bool = False, bf16: bool = False) -> tuple[dict[str, float], str]:
    """arch_id -> latency (ms) of each architecture's network at `size`, and how it was obtained.

    `cfg` is a `latency:` node; method table reads (and extends) the table cached under `run_root`."""
    method = check_method(str(cfg.get("method", "measured")))
    unique = list({a.arch_id: a for a in archs}.values())
    if method == "none" or not unique:
        return {}, "none"
    settings = latency_settings(cfg, bf16)
    if method == "table":
        if not has_table(space):
            return {}, f"none (space '{space.name}' has no per-op table; latency.method=measured times each network)"
        table = LatencyTable.cached(space, settings, run_root, device, channels_last)
        values = table.predict_many(shape, size, unique)
        table.save()
        return {a.arch_id: v for a, v in zip(unique, values, strict=True)}, f"table ({table.path.name})"
    out = {}
    layout = torch.channels_last if channels_last else torch.contiguous_format
    for arch in unique:
        torch.manual_seed(0)
        model = space.build(arch, shape, size).to(device, memory_format=layout)
        out[arch.arch_id] = measure_latency_ms(model, shape, settings)
    return out, "measured"
