"""Architecture proxies for `nas rank`: zero-cost scores, size baselines and combinations, in a registry."""

from nascli.proxies.base import (
    PROXIES,
    Proxy,
    ProxyPlan,
    get_proxies,
    load_proxies,
    plan_proxies,
    register_combined,
    register_proxy,
)

__all__ = ["PROXIES", "Proxy", "ProxyPlan", "get_proxies", "load_proxies", "plan_proxies", "register_combined",
           "register_proxy"]
