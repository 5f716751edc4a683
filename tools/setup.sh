#!/usr/bin/env bash
# Prepares this checkout to run mCloud: the Debian packages the real components need (when run
# as root), and a virtualenv in .venv with mCloud installed. Safe to run again: it only does
# what is missing. Usage: tools/setup.sh [run|test]
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-run}

# Debian packages: what mCloud's real drivers and the test harness drive.
packages=(python3-venv python3-dev)
# the OVN/OVS data plane the network service runs as root (mcloud.network.dataplane)
packages+=(ovn-central ovn-host openvswitch-switch)
# the qemu hypervisor driver (mcloud.compute.drivers.qemu): qemu, qemu-img, config drives (genisoimage),
# qemu's rbd block driver for root disks cloned in Ceph (qemu-block-extra);
# and what `mcloud image build-tiny` makes the tiny guest of: a Debian kernel, busybox and dropbear (its
# SSH server; dbclient logs in to guests in tests), a FAT file system written without mounting
# (mtools) made bootable by syslinux's mtools installer
packages+=(qemu-system-x86 qemu-utils qemu-block-extra genisoimage linux-image-cloud-amd64 busybox dropbear-bin mtools
           syslinux syslinux-common)
# the remote console's web page (noVNC, served by the compute console proxy at /compute/vnc/)
packages+=(novnc)
if [ "$purpose" = test ]; then
  packages+=(postgresql)
  # a private Ceph cluster (tests/ceph.py) and the bindings the rbd image store uses
  packages+=(ceph-mon ceph-osd ceph-mgr ceph-common python3-rados python3-rbd)
  # the network data-plane tests' guests: ping, and busybox's DHCP client (tests/netns.py)
  packages+=(iputils-ping udhcpc)
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # The OVN/OVS packages would start their system daemons (and ovn-controller would make br-int
    # in the host's own namespace): mCloud runs its own, so no service starts while installing.
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
  fi
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "setup: mCloud needs Python 3.11 or newer as $python" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv; then
    echo "setup: '$python -m venv' failed: install Debian's python3-venv (or run this as root)" >&2
    exit 1
  fi
fi

extras=""
[ "$purpose" = test ] && extras="[test]"
stamp=".venv/.mcloud-installed$extras"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing mCloud$extras into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extras"
  echo "$want" > "$stamp"
fi
