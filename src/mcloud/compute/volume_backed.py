"""Volume-backed servers (boot index 0 is a volume): Nova's snapshot_volume_backed for createImage,
the block device mappings an image made that way carries into a server create, and Nova's
refusals for what a volume-backed server cannot do here (createBackup, rebuild to another image,
rescue).

createImage of a volume-backed server takes no data from the host: each volume of the server gets
a forced snapshot in the volume service (``snapshot for <image name>``), and the image (raw/bare,
size 0, active at once) carries them as Nova writes them: ``block_device_mapping`` (a JSON list of
BDM v2 dicts with ``source_type`` snapshot), ``bdm_v2`` True and ``root_device_name``. A server
created from that image boots from a new volume made from the root snapshot (and gets the others
as further volumes), as Nova merges an image's mappings into the request's."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from mcloud.compute import models as m
from mcloud.compute.models_volumes import BlockDeviceMapping as BDM
from mcloud.compute.service import Caller
from mcloud.compute.service_servers_volumes import ROOT_DEVICE, get_volume, volume_caller
from mcloud.core.errors import APIError, BadRequest, Forbidden

#: image properties a snapshot does not inherit (Nova's NON_INHERITABLE_IMAGE_PROPERTIES and the
#: default [DEFAULT] non_inheritable_image_properties), and the namespace it drops
NON_INHERITABLE = frozenset({"cinder_encryption_key_id", "cinder_encryption_key_deletion_policy", "img_signature",
                             "img_signature_hash_method", "img_signature_key_type",
                             "img_signature_certificate_uuid", "cache_in_nova", "bittorrent"})
#: the keys of a BDM v2 dict in an image's block_device_mapping (Nova's bdm_new_fields less
#: connection_info), each present (None when unset) as Nova's BlockDeviceDict writes them
IMAGE_BDM_KEYS = ("source_type", "destination_type", "guest_format", "device_type", "disk_bus", "boot_index",
                  "device_name", "delete_on_termination", "snapshot_id", "volume_id", "volume_size", "image_id",
                  "no_device", "tag", "volume_type", "encrypted", "encryption_secret_uuid", "encryption_format",
                  "encryption_options")


async def root_bdm(session: Any, instance_uuid: str) -> BDM | None:
    """The boot volume's mapping of a volume-backed server (None: it boots from its image)."""
    return (await session.execute(sa.select(BDM).where(BDM.instance_uuid == instance_uuid, BDM.boot_index == 0)
                                  .limit(1))).scalar()


async def refuse_backup(session: Any, inst: m.Instance) -> None:
    if await root_bdm(session, inst.uuid) is not None:
        raise BadRequest("Backup is not supported for volume-backed instances.")


async def refuse_rebuild(compute: Any, session: Any, caller: Caller, inst: m.Instance, image_ref: str) -> None:
    """Nova's rebuild of a volume-backed server: only to the image its root volume was made from
    (reimaging the root volume, 2.93, is not built here)."""
    root = await root_bdm(session, inst.uuid)
    if root is None or not root.volume_id:
        return
    volume = await get_volume(compute, volume_caller(caller), root.volume_id)
    if (volume.get("volume_image_metadata") or {}).get("image_id") != image_ref:
        raise BadRequest(f"Image {image_ref} is unacceptable: Unable to rebuild with a different image for a "
                         "volume-backed server.")


async def refuse_rescue(compute: Any, session: Any, caller: Caller, inst: m.Instance,
                        rescue_image_ref: str | None) -> None:
    """Nova's rescue of a volume-backed server: from 2.87 only with an image that has
    hw_rescue_bus and hw_rescue_device, on a host with COMPUTE_RESCUE_BFV (none here)."""
    if await root_bdm(session, inst.uuid) is None:
        return
    props: dict[str, Any] = dict((inst.system_metadata or {}).get("image_properties") or {})
    if rescue_image_ref:
        image = await compute.image.get_image(session, caller.image_caller(), rescue_image_ref)
        props = dict((await compute.image.view(session, image)).properties)
    stable = caller.at(2, 87) and "hw_rescue_bus" in props and "hw_rescue_device" in props
    reason = "Host unable to rescue a volume-backed instance" if stable else "Cannot rescue a volume-backed instance"
    raise BadRequest(f"Instance {inst.uuid} cannot be rescued: {reason}")


def _image_bdm(values: dict[str, Any]) -> dict[str, Any]:
    out = dict.fromkeys(IMAGE_BDM_KEYS)
    out.update(values)
    out["delete_on_termination"] = bool(out["delete_on_termination"])
    return out


async def snapshot_volume_backed(servers: Any, caller: Caller, inst: m.Instance, name: str,
                                 metadata: dict[str, str]) -> str:
    """Nova's snapshot_volume_backed: a forced snapshot of every volume of the server, then the
    image of properties only (size 0, active) naming them. Over the snapshot quota: Nova's 403,
    and the snapshots made so far are deleted. Returns the image's id."""
    from mcloud.compute.service_servers_volumes import bdms_of
    from mcloud.image.service import Caller as ImageCaller

    compute = servers.compute
    vcaller = volume_caller(caller)
    async with servers.db.read() as session:
        bdms = [b for b in (await bdms_of(session, [inst.uuid]))[inst.uuid] if b.volume_id]
    async with servers.db.write() as session:
        await servers.record_action(session, caller, inst, "createImage")
    rid = caller.request_id
    await compute.conductor.event(inst.uuid, rid, "api_snapshot_instance", None, inst.host)
    made: list[str] = []
    mapping: list[dict[str, Any]] = []
    try:
        for bdm in bdms:
            volume = await get_volume(compute, vcaller, bdm.volume_id)
            snap = await compute.volume.snapshots.create(vcaller, bdm.volume_id, f"snapshot for {name}", True,
                                                         description=volume.get("description"))
            made.append(snap["id"])
            mapping.append(_image_bdm({
                "source_type": "snapshot", "destination_type": "volume", "snapshot_id": snap["id"],
                "disk_bus": bdm.disk_bus, "device_type": bdm.device_type, "boot_index": bdm.boot_index,
                "delete_on_termination": bdm.delete_on_termination, "volume_size": bdm.volume_size or volume["size"],
                "device_name": bdm.device_name}))
        sysmeta = inst.system_metadata or {}
        props = {k: v for k, v in (sysmeta.get("image_properties") or {}).items()
                 if k not in NON_INHERITABLE and not k.startswith("os_glance")}
        props.update(metadata)
        props.update({"root_device_name": ROOT_DEVICE, "block_device_mapping": json.dumps(mapping),
                      "bdm_v2": "True"})
        fields = {"name": name, "disk_format": "raw", "container_format": "bare",
                  "min_disk": int(sysmeta.get("image_min_disk") or 0), "min_ram": int(sysmeta.get("image_min_ram") or 0),
                  "visibility": "private" if caller.project_id == inst.project_id else "shared"}
        owner = ImageCaller(inst.project_id, False)
        async with servers.db.write() as session:
            image = await compute.image.create_image(session, owner, fields, {k: str(v) for k, v in props.items()}, [])
            image_id = str(image.id)
            if caller.project_id != inst.project_id:
                await compute.image.add_member(session, ImageCaller(inst.project_id, True), image, inst.project_id)

        async def nothing() -> Any:
            return
            yield b""  # an empty upload activates the image (Nova's force_activate)

        await compute.image.upload(owner, image_id, nothing(), size_hint=0)
    except BaseException as exc:
        for snapshot_id in made:
            try:
                await compute.volume.snapshots.delete(vcaller, snapshot_id)
            except APIError:
                pass
        await compute.conductor.event(inst.uuid, rid, "api_snapshot_instance", "Error", inst.host,
                                      exc if isinstance(exc, Exception) else None)
        if isinstance(exc, APIError) and exc.status == 413:
            raise Forbidden("Quota exceeded for resources: ['snapshots']") from None
        raise
    await compute.conductor.event(inst.uuid, rid, "api_snapshot_instance", "Success", inst.host)
    return image_id


def image_mappings(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The block_device_mapping_v2 entries an image carries (``bdm_v2`` True): Nova's
    _get_image_defined_bdms, as request entries."""
    if str(properties.get("bdm_v2", "")).lower() not in ("true", "1", "yes"):
        return []
    try:
        listed = json.loads(properties.get("block_device_mapping") or "[]")
    except ValueError:
        return []
    out = []
    for bdm in listed if isinstance(listed, list) else []:
        if not isinstance(bdm, dict) or bdm.get("no_device"):
            continue
        entry = {k: v for k, v in bdm.items() if v is not None and k in IMAGE_BDM_KEYS}
        uuid = bdm.get("snapshot_id") or bdm.get("volume_id") or bdm.get("image_id")
        if uuid:
            entry["uuid"] = uuid
        out.append(entry)
    return out


def merge_mappings(image_bdms: list[dict[str, Any]], requested: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nova's _merge_bdms_lists after dropping the request's image root (the image's mappings hold
    the root): a requested entry with the same device name replaces the image's."""
    if not any(b.get("boot_index") in (0, "0") for b in image_bdms):
        return requested
    requested = [b for b in requested if not (str(b.get("boot_index")) == "0" and b.get("source_type") == "image")]
    named = {b.get("device_name") for b in requested if b.get("device_name")}
    return [b for b in image_bdms if b.get("device_name") not in named] + requested
