"""Disk image formats, recognised from the bytes as they stream in (what Glance's format
inspector does): which format the data really is, its virtual size, and whether it is safe
to hand to a hypervisor.

:class:`StreamInspector` sees every chunk once and keeps only the few regions of the file that
the formats' headers point at (never the data), so inspecting a 2 GiB upload costs a few
kilobytes. After the last chunk, :func:`check_upload` applies Glance's rules:

- data matching a format other than the declared ``disk_format`` is refused (Glance answers
  415); ``raw`` accepts anything, and formats nobody can inspect (``ami``, ``ari``, ``aki``,
  ``ploop``) accept data that matches no known format;
- whatever format the data matches must pass that format's safety checks: no qcow2 backing
  file, no qcow2 external data file, no unknown qcow2 incompatible features, no VMDK whose
  create type names other files (only ``monolithicSparse`` and ``streamOptimized``).
"""

from __future__ import annotations

import dataclasses
import re
import struct
import uuid

SECTOR = 512


class ImageFormatError(ValueError):
    """The data does not match the declared format (or matches several)."""


class SafetyCheckFailed(ValueError):
    """The data is of a known format but unsafe to use (backing file, external data file, ...)."""


@dataclasses.dataclass
class _Region:
    offset: int
    length: int
    data: bytearray = dataclasses.field(default_factory=bytearray)

    @property
    def complete(self) -> bool:
        return len(self.data) >= self.length

    def feed(self, pos: int, chunk: bytes | memoryview) -> None:
        end = pos + len(chunk)
        want_from = self.offset + len(self.data)
        want_to = self.offset + self.length
        if self.complete or end <= want_from or pos >= want_to:
            return
        start = max(want_from, pos)
        stop = min(want_to, end)
        if start == want_from:
            self.data += chunk[start - pos:stop - pos]


class _Format:
    """One format's view of the stream: regions it wants, and what they say."""

    name = ""
    #: the region every stream is first looked at: (name, offset, length)
    FIRST = ("header", 0, 512)

    def __init__(self, inspector: StreamInspector):
        self.inspector = inspector
        self.regions: dict[str, _Region] = {}
        self.matched: bool | None = None  # None while undecided
        self.virtual_size: int | None = None
        self.unsafe: list[str] = []
        self.want(*self.FIRST)

    def undecided(self) -> bytes | None:
        """The first region, while it is read and no decision is made yet."""
        data = self.region(self.FIRST[0])
        return None if data is None or self.matched is not None else data

    def want(self, name: str, offset: int, length: int) -> None:
        if name in self.regions:
            return
        region = _Region(offset, length)
        self.regions[name] = region
        self.inspector._register(region)

    def region(self, name: str) -> bytes | None:
        """A region's bytes once read whole (or, after the stream ended, as much as there was)."""
        r = self.regions.get(name)
        if r is None or not (r.complete or (self.inspector.ended and r.data)):
            return None
        return bytes(r.data)

    def step(self) -> None:
        """Look at the regions read so far; may want more, decide a match, note unsafety."""

    def finish(self, size: int) -> None:
        """The stream ended at ``size`` bytes."""
        if self.matched is None:
            self.matched = False


class _Qcow2(_Format):
    name = "qcow2"
    DATA_FILE_EXTENSION = 0x44415441
    KNOWN_INCOMPATIBLE = 0x1F  # dirty, corrupt, external data file, compression type, extended L2


    def step(self) -> None:
        header = self.undecided()
        if header is None:
            return
        if header[:4] != b"QFI\xfb":
            self.matched = False
            return
        version, backing_offset, _backing_size, cluster_bits, size = struct.unpack(">IQIIQ", header[4:32])
        if version not in (2, 3) or not 9 <= cluster_bits <= 21:
            self.matched = False
            return
        self.matched = True
        self.virtual_size = size
        if backing_offset:
            self.unsafe.append("qcow2 has a backing file")
        if version >= 3:
            incompatible = struct.unpack(">Q", header[72:80])[0]
            header_length = struct.unpack(">I", header[100:104])[0]
            if incompatible & 0x4:
                self.unsafe.append("qcow2 has an external data file")
            if incompatible & ~self.KNOWN_INCOMPATIBLE:
                self.unsafe.append("qcow2 has unknown incompatible features")
        else:
            header_length = 72
        # header extensions follow the header, up to the end of the first cluster
        self._walk_extensions(header, header_length)

    def _walk_extensions(self, header: bytes, offset: int) -> None:
        while offset + 8 <= len(header):
            kind, length = struct.unpack(">II", header[offset:offset + 8])
            if kind == 0:
                return
            if kind == self.DATA_FILE_EXTENSION:
                if "qcow2 has an external data file" not in self.unsafe:
                    self.unsafe.append("qcow2 has an external data file")
                return
            offset += 8 + ((length + 7) & ~7)


class _Vmdk(_Format):
    name = "vmdk"
    ALLOWED = ("monolithicSparse", "streamOptimized")


    def step(self) -> None:
        header = self.region("header")
        if header is None:
            return
        if self.matched is None:
            if header[:4] != b"KDMV":
                # a text descriptor alone is a VMDK whose data lives in other files
                if header.startswith(b"# Disk DescriptorFile"):
                    self.matched = True
                    self.unsafe.append("vmdk is a descriptor naming other files")
                else:
                    self.matched = False
                return
            self.matched = True
            capacity, _grain, desc_sector, desc_sectors = struct.unpack("<QQQQ", header[12:44])
            self.virtual_size = capacity * SECTOR
            if not desc_sector or not 0 < desc_sectors <= 2048:
                self.unsafe.append("vmdk has no embedded descriptor")
                return
            self.want("descriptor", desc_sector * SECTOR, desc_sectors * SECTOR)
        descriptor = self.region("descriptor")
        if descriptor is not None and not getattr(self, "_checked", False):
            self._checked = True
            text = descriptor.split(b"\0", 1)[0].decode("latin-1")
            found = re.search(r'^\s*createType\s*=\s*"([^"]*)"', text, re.M)
            create_type = found.group(1) if found else ""
            if create_type not in self.ALLOWED:
                self.unsafe.append(f"vmdk create type {create_type or '(none)'!r} is not allowed")
            extents = re.findall(r"^\s*(RW|RDONLY|NOACCESS)\s+\d+\s+(\S+)", text, re.M)
            if len(extents) != 1 or extents[0][1] not in ("SPARSE",):
                self.unsafe.append("vmdk extents are not one sparse extent in this file")

    def finish(self, size: int) -> None:
        super().finish(size)
        if self.matched and "descriptor" in self.regions and not self.regions["descriptor"].complete:
            self.unsafe.append("vmdk descriptor lies past the end of the data")


class _Vhd(_Format):
    name = "vhd"

    FIRST = ("footer", 0, 512)

    def step(self) -> None:
        footer = self.undecided()
        if footer is None:
            return
        if footer[:8] == b"conectix":
            self.matched = True
            self.virtual_size = struct.unpack(">Q", footer[48:56])[0]

    def finish(self, size: int) -> None:
        if self.matched is None:
            tail = self.inspector.tail  # a fixed VHD has its footer only at the end
            if size >= 512 and tail[-512:-504] == b"conectix":
                self.matched = True
                self.virtual_size = struct.unpack(">Q", tail[-512 + 48:-512 + 56])[0]
            else:
                self.matched = False


class _Vhdx(_Format):
    name = "vhdx"
    METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
    VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le

    FIRST = ("ident", 0, 8)

    def step(self) -> None:
        ident = self.region("ident")
        if ident is None:
            return
        if self.matched is None:
            if ident != b"vhdxfile":
                self.matched = False
                return
            self.matched = True
            self.want("regions", 192 * 1024, 64 * 1024)
        regions = self.region("regions")
        if regions is not None and "metadata" not in self.regions and regions[:4] == b"regi":
            count = struct.unpack("<I", regions[8:12])[0]
            for i in range(min(count, 2047)):
                entry = regions[16 + i * 32:16 + (i + 1) * 32]
                if entry[:16] == self.METADATA_REGION:
                    offset, length = struct.unpack("<QI", entry[16:28])
                    if offset >= self.inspector.position and length <= 32 * 1024 * 1024:
                        self.want("metadata", offset, min(length, 64 * 1024))
                    break
        metadata = self.region("metadata")
        if metadata is not None and self.virtual_size is None and metadata[:8] == b"metadata":
            count = struct.unpack("<H", metadata[10:12])[0]
            for i in range(min(count, 2047)):
                entry = metadata[32 + i * 32:32 + (i + 1) * 32]
                if entry[:16] == self.VIRTUAL_DISK_SIZE:
                    item_offset, item_length = struct.unpack("<II", entry[16:24])
                    if item_offset + 8 <= len(metadata):
                        self.virtual_size = struct.unpack("<Q", metadata[item_offset:item_offset + 8])[0]
                    elif item_offset >= 64 * 1024:
                        base = self.regions["metadata"].offset
                        self.want("vsize", base + item_offset, 8)
                    break
        vsize = self.region("vsize")
        if vsize is not None and self.virtual_size is None:
            self.virtual_size = struct.unpack("<Q", vsize)[0]


class _Vdi(_Format):
    name = "vdi"


    def step(self) -> None:
        header = self.undecided()
        if header is None:
            return
        if struct.unpack("<I", header[0x40:0x44])[0] == 0xBEDA107F:
            self.matched = True
            self.virtual_size = struct.unpack("<Q", header[0x170:0x178])[0]
        else:
            self.matched = False


class _Iso(_Format):
    name = "iso"

    FIRST = ("descriptor", 16 * 2048, 2048)

    def step(self) -> None:
        desc = self.undecided()
        if desc is None:
            return
        if desc[1:6] == b"CD001":
            self.matched = True
            blocks = struct.unpack("<I", desc[80:84])[0]
            block_size = struct.unpack("<H", desc[128:130])[0]
            self.virtual_size = blocks * block_size
        elif desc[1:6] in (b"BEA01", b"NSR02", b"NSR03"):
            self.matched = True  # UDF: the size lies deeper; the data's size stands for it
        else:
            self.matched = False

    def finish(self, size: int) -> None:
        super().finish(size)
        if self.matched and not self.virtual_size:
            self.virtual_size = size


FORMATS: tuple[type[_Format], ...] = (_Qcow2, _Vmdk, _Vhd, _Vhdx, _Vdi, _Iso)
#: formats whose content can be recognised; others (ami, ari, aki, ploop) cannot be checked
INSPECTABLE = frozenset({"raw", *(f.name for f in FORMATS)})


class StreamInspector:
    """Feed it every chunk in order; afterwards ask which format the data is.

    It keeps the first ``HEAD`` bytes (headers point back into them) and the last ``TAIL``
    bytes (a fixed VHD's footer), and the regions further on that a header points at."""

    HEAD = 4 * 1024 * 1024
    TAIL = 512

    def __init__(self) -> None:
        self.position = 0
        self.ended = False
        self.head = bytearray()
        self.tail = b""
        self._pending: list[_Region] = []
        self.formats = [f(self) for f in FORMATS]

    def _register(self, region: _Region) -> None:
        if region.offset < self.position:
            region.feed(0, self.head)
        self._pending.append(region)

    def feed(self, chunk: bytes | memoryview) -> None:
        pos = self.position
        if pos < self.HEAD:
            self.head += chunk[:self.HEAD - pos]
        self.position += len(chunk)
        for region in self._pending:
            region.feed(pos, chunk)
        self._settle()
        if len(chunk) >= self.TAIL:
            self.tail = bytes(chunk[-self.TAIL:])
        else:
            self.tail = (self.tail + bytes(chunk))[-self.TAIL:]

    def _settle(self) -> None:
        while any(r.complete for r in self._pending):
            self._pending = [r for r in self._pending if not r.complete]
            for fmt in self.formats:
                fmt.step()

    def early_unsafe(self) -> list[str]:
        """Safety failures already certain (a qcow2 header with a backing file, ...)."""
        return [reason for fmt in self.formats if fmt.matched for reason in fmt.unsafe]

    def finish(self) -> _Format | None:
        """The one matched format (None: no known format, i.e. raw)."""
        self.ended = True
        for fmt in self.formats:
            try:
                fmt.step()  # regions cut short by the end of the data are looked at as they are
            except (struct.error, IndexError):
                if fmt.matched is None:
                    fmt.matched = False
            fmt.finish(self.position)
        matched = [f for f in self.formats if f.matched]
        if not matched:
            return None
        if len(matched) > 1:
            raise ImageFormatError("Image data matches several formats: "
                                   + ", ".join(sorted(f.name for f in matched)))
        return matched[0]


@dataclasses.dataclass(frozen=True)
class Verdict:
    detected: str
    virtual_size: int | None


def check_upload(inspector: StreamInspector, disk_format: str | None) -> Verdict:
    """Glance's rules for uploaded data against the declared ``disk_format``.

    Raises :class:`ImageFormatError` (mismatch) or :class:`SafetyCheckFailed` (unsafe)."""
    size = inspector.position
    fmt = inspector.finish()
    detected = fmt.name if fmt is not None else "raw"
    if fmt is not None and fmt.unsafe:
        raise SafetyCheckFailed("Image failed safety checks: " + "; ".join(fmt.unsafe))
    if detected == disk_format:
        return Verdict(detected, fmt.virtual_size if fmt is not None else size)
    if detected == "raw" and disk_format not in INSPECTABLE:
        return Verdict(detected, None)  # ami, aki, ari, ploop: nothing to recognise
    if disk_format == "raw":
        return Verdict(detected, size)  # raw accepts anything: its virtual size is its size
    raise ImageFormatError(f"Image disk_format {disk_format} does not match stream data {detected}")
