"""Volume: Cinder v3 at /volume (catalog ``block-storage``, alias ``volumev3``). Volumes live on
backends behind one Protocol (``drivers/base.py``): ``file`` (qcow2 files through qemu-img) and
``rbd`` (Ceph RBD images); several at once, chosen by volume type."""
