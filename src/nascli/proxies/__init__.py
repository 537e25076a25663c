"""Architecture proxies for `nas rank`: zero-cost scores and size baselines, in a registry."""

from nascli.proxies.base import PROXIES, Proxy, get_proxies, register_proxy

__all__ = ["PROXIES", "Proxy", "get_proxies", "register_proxy"]
