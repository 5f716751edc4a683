"""The network service's policy defaults live beside every other service's in one enforcer."""

from __future__ import annotations


def test_network_rules_leave_other_services_rules_alone() -> None:
    """One enforcer holds every service's rules: a network rule of another service's name would
    replace that service's (Keystone's admin_or_owner, Glance's default and service_api)."""
    from mcloud.identity import policies as identity
    from mcloud.image import policies as image
    from mcloud.network import policies as network
    from mcloud.placement import policies as placement

    for other in (identity.RULES, image.RULES, placement.RULES):
        assert {k for k in network.RULES if k in other and network.RULES[k] != other[k]} == set()
