"""Size baselines: every proxy must beat simply counting parameters or FLOPs.

They count the network as built (every op of the genotype, as NB201's own counts do), so a disconnected
cell keeps the size of its dead ops: a baseline says how big a network is, not whether it works.
"""

from __future__ import annotations

from nascli.proxies.base import register_proxy
from nascli.proxies.probe import Probe


@register_proxy("params", uses=("size",), batch_size=None, about="trainable parameters (bigger ranks higher)",
                degenerate="its size as built (a baseline, blind to connectivity)")
def params(probe: Probe, batch_size: int | None) -> float:
    return float(probe.size()["params"])


@register_proxy("flops", uses=("size",), batch_size=None, about="FLOPs of one image (bigger ranks higher)",
                degenerate="its size as built (a baseline, blind to connectivity)")
def flops(probe: Probe, batch_size: int | None) -> float:
    return float(probe.size()["flops"])


@register_proxy("latency", direction=-1, uses=("latency",), batch_size=None,
                about="measured inference latency in ms (median of latency.repeats eval-mode forwards of "
                      "latency.batch images on this device; lower ranks higher)",
                degenerate="its measured time as built (a cost, blind to connectivity)")
def latency(probe: Probe, batch_size: int | None) -> float:
    return probe.latency()
