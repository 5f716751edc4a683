"""Compute: Nova v2.1 at /compute. Servers are real QEMU guests (``drivers/qemu.py``) or state only
(``drivers/fake.py``), scheduled through Placement onto the in-process host or onto agents."""
