"""What runs inside mCloud's tiny guest: the files of its initramfs besides busybox, the kernel
modules and their libraries (see ``tinyimage.py``, which packs them).

The guest is a Debian kernel and a busybox userland living entirely in its initramfs. ``/init``
hands over to busybox ``init``, whose ``sysinit`` is ``/etc/rc``:

1. load the kernel modules the boot marker needs (virtio, its disk driver, ISO 9660), in
   dependency order, wait for ``/dev/vda`` and find the disks by label with one ``blkid``;
2. mount the config drive (ISO 9660 labelled ``config-2``), print the boot marker with the
   instance uuid from ``openstack/latest/meta_data.json`` and its user data between two
   framing lines, take the hostname (the server's name, as Nova's ``hostname`` has it) and
   write the key pair's public keys (``public_keys``) to ``/root/.ssh/authorized_keys``;
3. load the other modules (the NIC driver, FAT, ACPI button, evdev), start ``acpid`` (the
   power button is heard from then on: busybox init powers off once this script ends), count
   the boot on its own disk (``/boots`` on the FAT root disk labelled ``MCLOUDTINY``, so that
   tests can tell a disk that lived on from a fresh one) and print the disks and that count;
4. bring every NIC up and ask DHCP (busybox ``udhcpc``) on all of them at once, printing each
   lease; start the SSH server (Debian's ``dropbear``, in the background: it makes its host key
   at the first connection, ``-R``; key logins only, as ``root``, whose shell is ``/bin/sh``);
   then ``ready``. A NIC plugged later (interface attach) gets the same, through busybox
   ``uevent``, which also prints each disk plugged in or out later (volume attach and detach:
   ``disk vdc added <bytes> serial <volume id's first 20 characters>``, ``disk vdc removed``);
5. run the user data when it is a script (``#!``), its output framed and its exit status printed.

``acpid`` turns the ACPI power button into a clean power-off. Every line the guest prints for
machines starts with ``mcloud-tiny:`` (the exact texts are in ``tinyimage.py``). The kernel sees
as many CPUs as qemu gives it (the flavor's vCPUs): ``/proc/cpuinfo`` lists them.
"""

from __future__ import annotations

#: kernel modules the guest loads (their dependencies come first, found in modules.dep)
MODULES = ("virtio_ring", "virtio", "virtio_pci", "virtio_blk", "isofs", "virtio_net", "fat", "vfat",
           "nls_cp437", "nls_ascii", "button", "evdev")
#: the boot marker needs the modules up to this one (the disks, the config drive's file system);
#: the rest load after it
LAST_EARLY_MODULE = "isofs"

#: label of the root disk's FAT file system (at most 11 characters)
DISK_LABEL = "MCLOUDTINY"

INIT = """\
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /mnt/config /mnt/disk /sbin /usr/bin /usr/sbin /etc/dropbear
/bin/busybox --install -s
exec /bin/busybox init
"""

INITTAB = """\
::sysinit:/etc/rc
::shutdown:/etc/rc.shutdown
::ctrlaltdel:/sbin/reboot
"""

RC = r"""#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
say() { echo "mcloud-tiny: $*"; }
say "starting, kernel $(uname -r)"
# what the boot marker needs first (the disks and the config drive's ISO 9660), the rest after it
late=""
for m in $(cat /etc/modules); do
  if [ -n "$late" ]; then late="$late $m"; continue; fi
  insmod "/lib/modules/$m.ko" 2>/dev/null || say "module $m did not load"
  [ "$m" = "@LAST_EARLY@" ] && late=" "
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done

# the disks by label, in one look (blkid's order is not the disks'): the first of ours by name is
# the root disk (a rescue disk comes first)
root=""
config=""
while IFS= read -r line; do
  case "$line" in
    *'LABEL="config-2"'*) [ -z "$config" ] && config=${line%%:*};;
    *'LABEL="@DISK_LABEL@"'*) [ -z "$root" ] && root=${line%%:*};;
  esac
done <<EOF
$(blkid | sort)
EOF

# the config drive
[ -n "$config" ] && mount -t iso9660 -o ro "$config" /mnt/config 2>/dev/null
latest=/mnt/config/openstack/latest
uuid=none
if [ -f "$latest/meta_data.json" ]; then
  name=""
  while IFS= read -r kv; do
    v=${kv#*:}; v=${v# }; v=${v#\"}; v=${v%\"}
    case "$kv" in
      '"uuid"'*) [ "$uuid" = none ] && uuid=$v;;
      '"hostname"'*) [ -z "$name" ] && name=$v;;
    esac
  done <<EOF
$(grep -o '"\(uuid\|hostname\)": *"[^"]*"' "$latest/meta_data.json")
EOF
  [ -n "$name" ] && hostname "${name%%.*}"
  # the key pair: "public_keys": {"<name>": "<key>\n", ...} (JSON escapes dropped)
  keys=$(sed -n 's/.*"public_keys": *{\([^}]*\)}.*/\1/p' "$latest/meta_data.json" |
    grep -o '": *"[^"]*"' | sed 's/^": *"//; s/"$//; s/\\[nrt]//g')
  if [ -n "$keys" ]; then
    mkdir -p -m 700 /root/.ssh
    echo "$keys" > /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
  fi
fi
say "booted instance $uuid"
if [ -f "$latest/user_data" ]; then
  say "user-data begin"
  cat "$latest/user_data"
  [ -n "$(tail -c 1 "$latest/user_data")" ] && echo
  say "user-data end"
fi

# the rest of the modules; the power button works from here on (init acts on it once this
# script is done)
for m in $late; do
  insmod "/lib/modules/$m.ko" 2>/dev/null || say "module $m did not load"
done
acpid -c /etc/acpi -l /dev/null

# the root disk: count this boot on it
boots=0
if [ -n "$root" ] && mount -t vfat "$root" /mnt/disk 2>/dev/null; then
  boots=$(cat /mnt/disk/boots 2>/dev/null || echo 0)
  boots=$((boots + 1))
  echo "$boots" > /mnt/disk/boots
  sync
  umount /mnt/disk
fi
disks=""
for dev in /sys/block/vd?; do
  [ -e "$dev" ] || continue
  disks="$disks ${dev##*/}=$(($(cat "$dev/size") * 512))"
done
say "disks$disks; boot $boots"

# every NIC, DHCP on all at once; NICs plugged later get the same (/etc/hotplug)
ip link set lo up
uevent /etc/hotplug &
touch /run/nics-up
pids=""
for path in /sys/class/net/*; do
  nic=${path##*/}
  [ "$nic" = lo ] && continue
  /etc/dhcp-nic "$nic" &
  pids="$pids $!"
done
[ -n "$pids" ] && wait $pids
# SSH: root with the key pair's keys (no passwords); the host key is made at the first login
dropbear -R -s
say "ready"

# user data that is a script runs once the network is up
if [ -f "$latest/user_data" ] && [ "$(head -c 2 "$latest/user_data")" = "#!" ]; then
  cp "$latest/user_data" /run/user-data
  chmod 700 /run/user-data
  (
    say "user-data script begin"
    /run/user-data 2>&1
    say "user-data script exit $?"
  ) </dev/null &
fi
""".replace("@DISK_LABEL@", DISK_LABEL).replace("@LAST_EARLY@", LAST_EARLY_MODULE)

#: brings NIC $1 up and runs DHCP on it (in the background once it has a lease, or after 8 tries)
DHCP_NIC = """\
#!/bin/sh
ip link set "$1" up
exec udhcpc -i "$1" -s /etc/udhcpc.script -t 8 -T 1 -A 5 -b -O staticroutes -O mtu \\
  -x "hostname:$(hostname)" >/dev/null 2>&1
"""

#: run by busybox ``uevent`` for every kernel event: a NIC plugged in (interface attach) gets DHCP;
#: a disk plugged in or out (volume attach/detach) is told on the console with its size in bytes
#: and its serial (the volume id's first 20 characters, or "none")
HOTPLUG = """\
#!/bin/sh
case "$SUBSYSTEM" in
  net)
    [ -n "$INTERFACE" ] && [ "$INTERFACE" != lo ] || exit 0
    case "$ACTION" in
      add) [ -e /run/nics-up ] && echo "mcloud-tiny: $INTERFACE plugged" > /dev/console && /etc/dhcp-nic "$INTERFACE";;
      remove) echo "mcloud-tiny: $INTERFACE unplugged" > /dev/console;;
    esac;;
  block)
    [ "$DEVTYPE" = disk ] && [ -n "$DEVNAME" ] || exit 0
    d=${DEVNAME##*/}
    case "$ACTION" in
      add)
        serial=$(cat "/sys/block/$d/serial" 2>/dev/null)
        echo "mcloud-tiny: disk $d added $(($(cat "/sys/block/$d/size") * 512)) serial ${serial:-none}" > /dev/console;;
      remove) echo "mcloud-tiny: disk $d removed" > /dev/console;;
    esac;;
esac
exit 0
"""

RC_SHUTDOWN = """\
#!/bin/sh
echo "mcloud-tiny: powering off"
killall dropbear uevent udhcpc acpid 2>/dev/null
sync
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
# busybox udhcpc's hook: $1 is the event, the lease is in the environment
event=$1
case "$event" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    old=$(ip -4 -o addr show dev "$interface" | awk '{print $4}')
    if [ "$old" != "$ip/$mask" ]; then
      ip -4 addr flush dev "$interface"
      ip addr add "$ip/$mask" broadcast "${broadcast:-+}" dev "$interface"
    fi
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    set -- $staticroutes
    while [ $# -ge 2 ]; do
      ip route replace "$1" via "$2" dev "$interface" 2>/dev/null
      shift 2
    done
    for r in $router; do
      ip route add default via "$r" dev "$interface" 2>/dev/null
      break
    done
    [ -n "$dns" ] && { for d in $dns; do echo "nameserver $d"; done; } > /etc/resolv.conf
    if [ "$event" = bound ]; then
      echo "mcloud-tiny: $interface lease $ip/$mask mac $(cat /sys/class/net/$interface/address) router ${router:-none}" > /dev/console
    fi
    ;;
esac
exit 0
"""

#: busybox acpid runs /etc/acpi/<action>/<parameter> for an event: the power button's is PWRF/00000080
ACPI_POWER = """\
#!/bin/sh
echo "mcloud-tiny: power button" > /dev/console
poweroff
"""

SYSLINUX_CFG = """\
DEFAULT tiny
PROMPT 0
TIMEOUT 0
LABEL tiny
  KERNEL /vmlinuz
  INITRD /initrd.gz
  APPEND console=tty0 console=ttyS0,115200 quiet panic=1
"""

#: path in the initramfs -> (mode, content); modules, busybox and its libraries are added by the builder
FILES: dict[str, tuple[int, str]] = {
    "init": (0o755, INIT),
    "etc/inittab": (0o644, INITTAB),
    "etc/rc": (0o755, RC),
    "etc/rc.shutdown": (0o755, RC_SHUTDOWN),
    "etc/udhcpc.script": (0o755, UDHCPC_SCRIPT),
    "etc/dhcp-nic": (0o755, DHCP_NIC),
    "etc/hotplug": (0o755, HOTPLUG),
    "etc/acpi/PWRF/00000080": (0o755, ACPI_POWER),
    "etc/hostname": (0o644, "tiny\n"),
    "etc/passwd": (0o644, "root:x:0:0:root:/root:/bin/sh\n"),
    "etc/shells": (0o644, "/bin/sh\n"),
    "etc/group": (0o644, "root:x:0:\n"),
}
