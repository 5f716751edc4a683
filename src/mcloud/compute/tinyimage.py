"""mCloud's tiny guest image (its CirrOS), built from Debian packages alone.

The image is a qcow2 disk of a few tens of MB: a FAT file system (labelled ``MCLOUDTINY``) on the
whole disk, made bootable by syslinux's mtools installer, holding the Debian kernel of this
machine (``/boot/vmlinuz-*``, package linux-image-cloud-amd64 or -amd64) and an initramfs packed
here: busybox, Debian's dropbear (the guest's SSH server: root logs in with the key pair of the
config drive) with the libraries both load, the kernel modules the guest needs (virtio before
its drivers, from ``modules.dep``), and the scripts of ``tinyimage_guest.py``. Nothing is
mounted to build it: ``mformat``/``mcopy`` write the file system into a plain file,
``syslinux --install`` the boot sector, ``qemu-img convert`` the qcow2.

What the guest prints on its serial console (the lines machines look for)::

    mcloud-tiny: booted instance <uuid from the config drive's meta_data.json, or "none">
    mcloud-tiny: user-data begin
    <the user data, as given>
    mcloud-tiny: user-data end
    mcloud-tiny: disks vda=1073741824 vdb=...; boot 1
    mcloud-tiny: eth0 lease 10.0.0.5/24 mac fa:16:3e:.. router 10.0.0.1
    mcloud-tiny: ready
    mcloud-tiny: user-data script begin          (user data starting with "#!" runs)
    <its output>
    mcloud-tiny: user-data script exit 0
    mcloud-tiny: disk vdc added 1073741824 serial 0b3c1f2e-8f7a-4c1d-9  (a disk hot-plugged later)
    mcloud-tiny: disk vdc removed                (and unplugged)
    mcloud-tiny: power button                    (ACPI power button: clean power-off)
    mcloud-tiny: powering off

``build()`` caches the image by the content of everything that goes in (the kernel, its
modules, busybox, dropbear, the guest's scripts), so a second build is a file lookup.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from mcloud.compute import tinyimage_guest as guest

#: bump when the way the image is put together changes (it is part of the cache key)
BUILDER_VERSION = "4"

BOOT_START = "mcloud-tiny: starting"
MARKER_BOOTED = "mcloud-tiny: booted instance "
USER_DATA_BEGIN = "mcloud-tiny: user-data begin"
USER_DATA_END = "mcloud-tiny: user-data end"
SCRIPT_BEGIN = "mcloud-tiny: user-data script begin"
SCRIPT_EXIT = "mcloud-tiny: user-data script exit "
READY = "mcloud-tiny: ready"
POWERING_OFF = "mcloud-tiny: powering off"

#: the image service's name and properties for it
IMAGE_NAME = "tiny"
IMAGE_PROPERTIES = {"hw_disk_bus": "virtio", "hw_vif_model": "virtio", "hw_architecture": "x86_64",
                    "os_type": "linux", "os_distro": "mcloud-tiny", "hw_rng_model": "none"}
#: the disk's size (the FAT file system fills it); flavors grow the instance's overlay
DISK_MB = 48
#: the memory the guest needs (an image's min_ram): the Debian kernel resets itself in 64 MB
MIN_RAM_MB = 96

PROGRAMS = {"mformat": "mtools", "mcopy": "mtools", "syslinux": "syslinux", "qemu-img": "qemu-utils",
            "busybox": "busybox or busybox-static", "dropbear": "dropbear-bin"}
#: programs the guest runs besides busybox (packed with their libraries): name -> path in the guest
GUEST_PROGRAMS = {"dropbear": "usr/sbin/dropbear"}
SYSLINUX_MODULES = Path("/usr/lib/syslinux/modules/bios")


class TinyImageError(RuntimeError):
    """The image cannot be built here (the message says what is missing or what failed)."""


@dataclasses.dataclass(frozen=True)
class TinyImage:
    path: Path
    key: str  # the content key (hex) of everything that went in
    kernel_version: str
    size: int

    def checksum(self, algorithm: str = "sha512") -> str:
        digest = hashlib.new(algorithm)
        with open(self.path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()


# -- what the build needs ---------------------------------------------------------------------


def find_kernel(kernel: Path | None = None) -> tuple[Path, Path]:
    """The kernel image and its modules directory: ``kernel`` if given, else the newest
    ``/boot/vmlinuz-*`` whose ``/lib/modules/<version>/modules.dep`` exists."""
    candidates = [kernel] if kernel else sorted(Path("/boot").glob("vmlinuz-*"), key=_version_key, reverse=True)
    for path in candidates:
        version = path.name.removeprefix("vmlinuz-")
        modules = Path("/lib/modules") / version
        if path.is_file() and (modules / "modules.dep").is_file():
            return path, modules
    raise TinyImageError("no Debian kernel with its modules (install linux-image-cloud-amd64)"
                         if not kernel else f"{kernel} has no /lib/modules/<version>/modules.dep")


def _version_key(path: Path) -> list[object]:
    return [int(p) if p.isdigit() else p for p in re.split(r"[.-]", path.name)]


def missing() -> str | None:
    """What keeps the image from being built here (a sentence), or None."""
    absent = sorted({pkg for prog, pkg in PROGRAMS.items() if _which(prog) is None})
    problems = [f"missing programs (Debian: {', '.join(absent)})"] if absent else []
    if not (SYSLINUX_MODULES / "ldlinux.c32").exists():
        problems.append("no syslinux BIOS modules (Debian: syslinux-common)")
    try:
        find_kernel()
    except TinyImageError as exc:
        problems.append(str(exc))
    return "; ".join(problems) or None


def module_order(modules_dir: Path, wanted: tuple[str, ...] = guest.MODULES) -> list[Path]:
    """The module files to load, each after the ones it depends on (from ``modules.dep``)."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (modules_dir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[_module_name(path)] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps.get(path, ()):
            visit(dep)
        order.append(path)

    for name in wanted:
        path = by_name.get(name.replace("-", "_"))
        if path is None:
            if _builtin(modules_dir, name):
                continue
            raise TinyImageError(f"kernel module {name} is neither in {modules_dir} nor built in")
        visit(path)
    return [modules_dir / p for p in order]


def _module_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    for suffix in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base.replace("-", "_")


def _builtin(modules_dir: Path, name: str) -> bool:
    builtin = modules_dir / "modules.builtin"
    return builtin.exists() and any(_module_name(line) == name.replace("-", "_")
                                    for line in builtin.read_text().splitlines())


def _which(program: str) -> str | None:
    """``program`` on the PATH or in the sbin directories (not on a non-root user's PATH)."""
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")


def _busybox() -> tuple[Path, list[Path]]:
    """busybox and, when it is linked dynamically, the libraries it loads (with the loader)."""
    return _program("busybox")


def _program(name: str) -> tuple[Path, list[Path]]:
    """Program ``name`` and, when it is linked dynamically, the libraries it loads (with the loader)."""
    found = _which(name)
    if found is None:
        raise TinyImageError(f"{name} is not installed (Debian: {PROGRAMS.get(name, name)})")
    path = Path(found).resolve()
    libs: list[Path] = []
    result = subprocess.run(["ldd", str(path)], capture_output=True, text=True)
    if result.returncode == 0:  # "not a dynamic executable" for busybox-static
        for line in result.stdout.splitlines():
            match = re.search(r"(/\S+)", line.split("=>")[-1])
            if match:
                libs.append(Path(match.group(1)))
    return path, libs


# -- the initramfs ------------------------------------------------------------------------------


class Cpio:
    """A ``newc`` cpio archive (what the kernel unpacks into its initramfs), written in order."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1
        self.dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        fields = [self.ino, mode, 0, 0, 2 if mode & 0o040000 else 1, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(name) + 1, 0]
        self.ino += 1
        self.buf.write(b"070701" + "".join(f"{v:08x}" for v in fields).encode() + name.encode() + b"\0")
        self._pad()
        self.buf.write(data)
        self._pad()

    def _pad(self) -> None:
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def dir(self, name: str) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self.dirs:
                self.dirs.add(d)
                self._entry(d, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        name = name.strip("/")
        if "/" in name:
            self.dir(name.rsplit("/", 1)[0])
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        name = name.strip("/")
        if "/" in name:
            self.dir(name.rsplit("/", 1)[0])
        self._entry(name, 0o120777, target.encode())

    def chardev(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name.strip("/"), 0o020000 | mode, rdev=(major, minor))

    def close(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


@dataclasses.dataclass
class _Inputs:
    kernel: Path
    modules: list[Path]
    busybox: Path
    libs: list[Path]
    #: path in the guest -> the program (GUEST_PROGRAMS); its libraries are in ``libs``
    programs: dict[str, Path] = dataclasses.field(default_factory=dict)

    @property
    def kernel_version(self) -> str:
        return self.kernel.name.removeprefix("vmlinuz-")

    def key(self) -> str:
        digest = hashlib.sha256(f"mcloud-tiny {BUILDER_VERSION} {DISK_MB}\n".encode())
        for name, (mode, text) in sorted(guest.FILES.items()):
            digest.update(f"{name} {mode:o} {len(text)}\n".encode() + text.encode())
        digest.update(guest.SYSLINUX_CFG.encode())
        digest.update("".join(f"{name}\n" for name in sorted(self.programs)).encode())
        for path in [self.kernel, self.busybox, *self.libs, *self.modules, SYSLINUX_MODULES / "ldlinux.c32",
                     *(self.programs[name] for name in sorted(self.programs))]:
            digest.update(f"{path.name}\n".encode())
            digest.update(_file_hash(path))
        return digest.hexdigest()


def _file_hash(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def _inputs(kernel: Path | None) -> _Inputs:
    if (why := missing()) is not None and kernel is None:
        raise TinyImageError(f"cannot build the tiny image: {why}")
    kernel_path, modules_dir = find_kernel(kernel)
    busybox, libs = _busybox()
    programs: dict[str, Path] = {}
    for name, guest_path in GUEST_PROGRAMS.items():
        programs[guest_path], more = _program(name)
        libs += [lib for lib in more if lib not in libs]
    return _Inputs(kernel_path, module_order(modules_dir), busybox, libs, programs)


def initramfs(inputs: _Inputs) -> bytes:
    """The guest's initramfs, gzip-compressed (deterministic: no timestamps)."""
    cpio = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "run", "tmp", "root",
              "mnt/config", "mnt/disk", "lib/modules"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3, 0o666)
    cpio.file("bin/busybox", inputs.busybox.read_bytes(), 0o755)
    cpio.symlink("bin/sh", "busybox")
    for lib in inputs.libs:
        cpio.file(str(lib), lib.read_bytes(), 0o755)
    for guest_path, program in sorted(inputs.programs.items()):
        cpio.file(guest_path, program.read_bytes(), 0o755)
    names = []
    for module in inputs.modules:
        name = _module_name(module.name)
        names.append(name)
        cpio.file(f"lib/modules/{name}.ko", module.read_bytes())
    cpio.file("etc/modules", ("\n".join(names) + "\n").encode())
    for name, (mode, text) in sorted(guest.FILES.items()):
        cpio.file(name, text.encode(), mode)
    return gzip.compress(cpio.close(), compresslevel=9, mtime=0)


# -- the disk -----------------------------------------------------------------------------------


def _run(*argv: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "MTOOLS_SKIP_CHECK": "1", **(env or {})})
    if result.returncode != 0:
        raise TinyImageError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")


def build_disk(inputs: _Inputs, dest: Path) -> None:
    """Write the bootable qcow2 to ``dest``."""
    with tempfile.TemporaryDirectory(prefix="mcloud-tiny-") as tmp:
        work = Path(tmp)
        raw = work / "disk.raw"
        with open(raw, "wb") as f:
            f.truncate(DISK_MB << 20)
        # one FAT file system on the whole disk (64 heads x 32 sectors: 1 MiB cylinders)
        _run("mformat", "-i", str(raw), "-t", str(DISK_MB), "-h", "64", "-s", "32", "-v", guest.DISK_LABEL,
             "-N", "4d434c44", "::")
        _run("syslinux", "--install", str(raw))
        (work / "initrd.gz").write_bytes(initramfs(inputs))
        (work / "syslinux.cfg").write_text(guest.SYSLINUX_CFG)
        shutil.copyfile(inputs.kernel, work / "vmlinuz")
        _run("mcopy", "-i", str(raw), str(work / "vmlinuz"), str(work / "initrd.gz"), str(work / "syslinux.cfg"),
             "::/")
        tmp_dest = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        _run("qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-c", str(raw), str(tmp_dest))
        os.replace(tmp_dest, dest)


def default_cache_dir() -> Path:
    """``$MCLOUD_CACHE_DIR``, else ``$XDG_CACHE_HOME/mcloud``, else ``~/.cache/mcloud``."""
    if os.environ.get("MCLOUD_CACHE_DIR"):
        return Path(os.environ["MCLOUD_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mcloud"


def build(output: Path | None = None, cache_dir: Path | None = None, kernel: Path | None = None,
          force: bool = False) -> TinyImage:
    """The tiny image: from the cache when everything that goes in is unchanged, else built.
    ``output``: also copy it there."""
    inputs = _inputs(kernel)
    key = inputs.key()
    cache = (cache_dir or default_cache_dir()) / "tiny"
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / f"tiny-{key[:16]}.qcow2"
    if force or not cached.exists():
        build_disk(inputs, cached)
    path = cached
    if output is not None:
        output = Path(output)
        if output.resolve() != cached.resolve():
            tmp = output.with_name(f".{output.name}.tmp")
            shutil.copyfile(cached, tmp)
            os.replace(tmp, output)
        path = output
    return TinyImage(path=path, key=key, kernel_version=inputs.kernel_version, size=path.stat().st_size)


# -- reading what the guest printed -------------------------------------------------------------


@dataclasses.dataclass
class GuestConsole:
    """What a tiny guest said on its console (the latest boot's, when it booted several times)."""

    booted: bool = False
    uuid: str | None = None
    user_data: str | None = None
    #: interface -> "address/prefix"
    leases: dict[str, str] = dataclasses.field(default_factory=dict)
    #: interface -> MAC address
    macs: dict[str, str] = dataclasses.field(default_factory=dict)
    ready: bool = False
    boot_count: int | None = None
    #: disk name -> size in bytes
    disks: dict[str, int] = dataclasses.field(default_factory=dict)
    script_output: str | None = None
    script_exit: int | None = None
    powering_off: bool = False
    #: disks plugged in or out since the boot, in order: ("added", name, bytes, serial) or
    #: ("removed", name, None, None)
    disk_events: list[tuple[str, str, int | None, str | None]] = dataclasses.field(default_factory=list)
    #: how many boots the text shows
    boots_seen: int = 0


_LEASE = re.compile(r"^mcloud-tiny: (\S+) lease (\S+) mac (\S+)")
_DISKS = re.compile(r"^mcloud-tiny: disks(.*); boot (\d+)")
#: lines the guest's own processes print while a user-data script runs (they are not its output)
_GUEST_EVENTS = re.compile(r"^mcloud-tiny: (power button|powering off|\S+ lease |\S+ plugged$|\S+ unplugged$"
                           r"|disk \S+ (added|removed))")
_DISK_EVENT = re.compile(r"^mcloud-tiny: disk (\S+) (added (\d+) serial (\S+)|removed)$")


def parse_console(text: str) -> GuestConsole:
    """Read a tiny guest's console log (the whole of it: the last boot wins).

    A boot can end anywhere (a hard reboot, a power-off that timed out): in the middle of its
    user data or of its user-data script. The next boot's ``starting`` line ends whatever block
    was open, so the framing lines a cut-short boot never printed are not looked for in the
    boots after it."""
    seen = GuestConsole()
    block: str | None = None  # "user-data" or "script": inside the lines between framing markers
    body: list[str] = []
    # a marker may follow other bytes on its line: the firmware's screen-clearing escapes, or
    # half a line of a boot that was cut short by a hard reset
    for raw in text.splitlines():
        line = _from_marker(raw.rstrip("\r"))
        if line.startswith(BOOT_START):
            seen = GuestConsole(boots_seen=seen.boots_seen + 1)
            block, body = None, []
            continue
        if block == "user-data":
            if line == USER_DATA_END:
                block = None
            else:
                body.append(raw.rstrip("\r"))
                seen.user_data = "\n".join(body)
            continue
        if block == "script":
            if line.startswith(SCRIPT_EXIT):
                seen.script_exit = int(line[len(SCRIPT_EXIT):].strip())
                block = None
                continue
            if not _GUEST_EVENTS.match(line):
                body.append(raw.rstrip("\r"))
                seen.script_output = "\n".join(body)
                continue
        if (m := _DISKS.match(line)) is not None:
            seen.boot_count = int(m.group(2))
            seen.disks = {k: int(v) for k, v in (d.split("=") for d in m.group(1).split())}
        elif line.startswith(MARKER_BOOTED):
            seen.booted = True
            seen.uuid = line[len(MARKER_BOOTED):].strip()
        elif line == USER_DATA_BEGIN:
            block, body, seen.user_data = "user-data", [], ""
        elif (m := _LEASE.match(line)) is not None:
            seen.leases[m.group(1)] = m.group(2)
            seen.macs[m.group(1)] = m.group(3)
        elif line == READY:
            seen.ready = True
        elif line == SCRIPT_BEGIN:
            block, body, seen.script_output = "script", [], ""
        elif line == POWERING_OFF:
            seen.powering_off = True
        elif (m := _DISK_EVENT.match(line)) is not None:
            if m.group(3) is not None:
                seen.disk_events.append(("added", m.group(1), int(m.group(3)), m.group(4)))
            else:
                seen.disk_events.append(("removed", m.group(1), None, None))
    return seen


def _from_marker(line: str) -> str:
    at = line.find("mcloud-tiny: ")
    return line[at:] if at > 0 else line

