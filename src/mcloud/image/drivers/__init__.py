"""Image stores behind one Protocol: ``file`` (default) and ``rbd`` (Ceph)."""
