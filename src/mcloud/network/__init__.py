"""Networking: Neutron v2.0 at /networking, on an OVN/OVS data plane (``drivers/ovn.py``) or on
none (``drivers/fake.py``)."""
