"""Flavor extra specs Nova knows, and its check of them (microversion 2.86+).

A key matching a known spec must carry a value of that spec's kind (integer with bounds, boolean,
one of a set, or matching a pattern). A key in a namespace Nova knows (``hw:``, ``resources:``,
``trait:``...) that matches no known spec is refused; keys in other namespaces or without one
are free, as in Nova (``nova/api/validation/extra_specs``).
"""

from __future__ import annotations

import dataclasses
import re

import os_resource_classes

from mcloud.core.errors import BadRequest

_GROUP = r"([a-zA-Z0-9_-]{1,64})?"
_CPU_MAP = r"\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"
_TRUE = {"1", "t", "true", "on", "y", "yes"}
_FALSE = {"0", "f", "false", "off", "n", "no"}


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str  # a regular expression over the whole key
    kind: type  # int, bool or str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None

    def check(self, value: str) -> None:
        if self.kind is int:
            try:
                number = int(value)
            except ValueError:
                raise BadRequest(f"Validation failed; '{value}' is not a valid integer value.") from None
            if self.maximum is not None and number > self.maximum:
                raise BadRequest(f"Validation failed; '{value}' is greater than the max value of "
                                 f"'{self.maximum}'.")
            if self.minimum is not None and number < self.minimum:
                raise BadRequest(f"Validation failed; '{value}' is less than the min value of '{self.minimum}'.")
        elif self.kind is bool:
            if value.strip().lower() not in _TRUE | _FALSE:
                raise BadRequest(f"Validation failed; '{value}' is not a valid boolean-like value.")
        elif self.pattern is not None:
            if not re.fullmatch(self.pattern, value):
                raise BadRequest(f"Validation failed; '{value}' is not of the format '{self.pattern}'.")
        elif self.choices and value not in self.choices:
            raise BadRequest(f"Validation failed; '{value}' is not one of: {', '.join(self.choices)}.")


def _specs() -> list[Spec]:
    specs = [Spec(re.escape(f"hw:{n}"), bool) for n in (
        "cpu_realtime", "hide_hypervisor_id", "locked_memory", "boot_menu", "vif_multiqueue_enabled",
        "mem_encryption", "pmu", "virtio_packed_ring", "ephemeral_encryption")]
    specs += [Spec(re.escape(f"hw:{n}"), int, minimum=1) for n in (
        "numa_nodes", "cpu_sockets", "cpu_cores", "cpu_threads", "cpu_max_sockets", "cpu_max_cores",
        "cpu_max_threads")]
    choices = {
        "cpu_policy": ("dedicated", "shared", "mixed"),
        "cpu_thread_policy": ("prefer", "isolate", "require"),
        "emulator_threads_policy": ("isolate", "share"),
        "pci_numa_affinity_policy": ("required", "preferred", "legacy", "socket"),
        "mem_encryption_model": ("amd-sev", "amd-sev-es", "amd-sev-snp"),
        "tpm_model": ("tpm-tis", "tpm-crb"),
        "tpm_version": ("1.2", "2.0"),
        "tpm_secret_security": ("user", "host", "deployment"),
        "watchdog_action": ("none", "pause", "poweroff", "reset", "disabled"),
        "viommu_model": ("intel", "smmuv3", "virtio", "auto"),
        "sound_model": ("sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "virtio"),
        "usb_model": ("none", "piix3-uhci", "piix4-uhci", "ehci", "ich9-ehci1", "ich9-uhci1", "ich9-uhci2",
                      "ich9-uhci3", "vt82c686b-uhci", "pci-ohci", "nec-xhci", "qemu-xhci"),
        "ephemeral_encryption_format": ("luks",),
    }
    specs += [Spec(re.escape(f"hw:{n}"), str, choices=c) for n, c in choices.items()]
    specs += [
        Spec(re.escape("hw:cpu_realtime_mask"), str, pattern=r"(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"),
        Spec(re.escape("hw:cpu_dedicated_mask"), str, pattern=r"(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*"),
        Spec(re.escape("hw:mem_page_size"), str, pattern=r"(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)"),
        Spec(r"hw:numa_cpus\.\d+", str, pattern=_CPU_MAP),
        Spec(r"hw:numa_mem\.\d+", int, minimum=1),
        Spec(re.escape("hw:pmem"), str, pattern=r"([a-zA-Z0-9_]+(,)?)+"),
        Spec(re.escape("hw:serial_port_count"), int, minimum=0),
        Spec(re.escape("hw:redirected_usb_ports"), int, minimum=0, maximum=15),
        Spec(re.escape("hw_rng:allowed"), bool),
        Spec(re.escape("hw_rng:rate_bytes"), int, minimum=0),
        Spec(re.escape("hw_rng:rate_period"), int, minimum=0),
        Spec(re.escape("hw_video:ram_max_mb"), int, minimum=0),
        Spec(re.escape("os:secure_boot"), str, choices=("disabled", "required")),
        Spec(rf"resources{_GROUP}:CUSTOM_[A-Z0-9_]+", int),
        Spec(rf"trait{_GROUP}:[A-Z0-9_]+", str, choices=("required", "forbidden")),
        Spec(re.escape("accel:device_profile"), str),
        Spec(re.escape("pci_passthrough:alias"), str, pattern=r"[^:]+:\d+(?:\s*,\s*[^:]+:\d+)*"),
        Spec(r"capabilities:\w+(:\w+)*", str),
        Spec(r"aggregate_instance_extra_specs:.+", str),
        Spec(re.escape("vmware:hw_version"), str),
        Spec(re.escape("vmware:storage_policy"), str),
        Spec(re.escape("hide_hypervisor_id"), bool),
        Spec(re.escape("group_policy"), str, choices=("isolate", "none")),
        Spec(re.escape("quota:cpu_shares"), int, minimum=0),
        Spec(re.escape("quota:cpu_period"), int, minimum=0),
        Spec(re.escape("quota:cpu_quota"), int),
        Spec(r"quota:disk_(read|write|total)_(bytes|iops)_sec", int, minimum=0),
        Spec(r"quota:vif_(inbound|outbound)_(average|peak|burst)", int, minimum=0),
    ]
    specs += [Spec(rf"resources{_GROUP}:{re.escape(rc)}", int) for rc in os_resource_classes.STANDARDS]
    for key in ("cpu", "memory", "disk_io", "vif"):
        specs += [Spec(f"quota:{key}_limit", int, minimum=0), Spec(f"quota:{key}_reservation", int),
                  Spec(f"quota:{key}_shares_level", str, choices=("custom", "high", "normal", "low")),
                  Spec(f"quota:{key}_shares_share", int, minimum=0)]
    return specs


SPECS = _specs()
_EXACT = {s.name.replace("\\", ""): s for s in SPECS if re.escape(s.name.replace("\\", "")) == s.name}
#: the namespaces Nova knows: a key in one of them must match a known spec
NAMESPACES = ("hw", "hw_rng", "hw_video", "os", rf"resources{_GROUP}", rf"trait{_GROUP}", "accel",
              "pci_passthrough", "capabilities", "aggregate_instance_extra_specs", "vmware", "quota")


def validate(name: str, value: str) -> None:
    """Nova's check of one extra spec (400 with Nova's message when it fails)."""
    spec = _EXACT.get(name)
    if spec is None:
        spec = next((s for s in SPECS if re.fullmatch(s.name, name)), None)
    if spec is not None:
        spec.check(value)
        return
    if ":" not in name:
        return
    namespace = name.split(":", 1)[0]
    if any(re.fullmatch(ns, namespace) for ns in NAMESPACES):
        raise BadRequest(f"Validation failed; extra spec '{name}' does not appear to be a valid extra spec.")
