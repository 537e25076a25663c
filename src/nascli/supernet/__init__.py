"""Weight-sharing supernets over the cell spaces (every edge holds every candidate op)."""

from nascli.supernet.networks import SUPERNETS, Sample, Supernet, build_supernet

__all__ = ["SUPERNETS", "Sample", "Supernet", "build_supernet"]
