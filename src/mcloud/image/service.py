"""The image service's logic: images, their data, sharing, import, and the stores.

Everything the API does can be called from Python: every method takes the :class:`Caller`
(whose project, whether admin) and raises :mod:`mcloud.core.errors` on bad requests.

Data moves as a stream through :class:`DataPipeline`, which counts, hashes (md5 for
``checksum``, ``[image] hashing_algorithm`` (sha512) for ``os_hash_value``) and inspects (``formats.StreamInspector``) every
chunk on its way into a store, and refuses the data as soon as it breaks a rule (size cap,
quota, unsafe format). The store writes nothing that stays unless the whole stream succeeds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.core.db import Database
from mcloud.core.errors import (APIError, BadRequest, Conflict, Forbidden, Gone, NotFound, RequestTooLarge,
                                ServiceUnavailable, UnsupportedMediaType)
from mcloud.core.tasks import Task, TaskContext, TaskQueue
from mcloud.identity.service import IdentityService
from mcloud.image import formats
from mcloud.image import models as m
from mcloud.image.config import ImageConfig
from mcloud.image.drivers import ImageStore, InUse, StoreError, StoreFull, load_store
from mcloud.image.drivers.file import FileStore

log = logging.getLogger("mcloud.image")

MiB = 1024 * 1024
STATUSES = ("queued", "saving", "uploading", "importing", "active", "killed", "deleted", "pending_delete",
            "deactivated")
VISIBILITIES = ("public", "private", "shared", "community")
MEMBER_STATUSES = ("pending", "accepted", "rejected")
IMPORT_TASK = "image.import"
STAGING_STORE = "os_glance_staging_store"
#: image attributes that are columns (the rest are custom string properties)
BASE = ("id", "name", "status", "visibility", "owner", "disk_format", "container_format", "size",
        "virtual_size", "checksum", "os_hash_algo", "os_hash_value", "min_disk", "min_ram", "protected",
        "os_hidden", "created_at", "updated_at", "tags")
READ_ONLY = ("created_at", "updated_at", "status", "checksum", "size", "virtual_size", "direct_url", "self",
             "file", "schema", "id", "os_hash_algo", "os_hash_value")
RESERVED = ("location", "deleted", "deleted_at")
DISALLOWED = ("direct_url", "self", "file", "schema", "stores")
RESERVED_NAMESPACE = "os_glance"
#: the os_glance_* properties Glance keeps to itself
HIDDEN_PROPERTIES = ("os_glance_stage_host", "os_glance_hash_op_host")
SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def utcnow() -> datetime:
    return datetime.utcnow()


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who asks: their project (None for a system- or domain-scoped token) and whether admin."""

    project_id: str | None
    is_admin: bool = False


@dataclasses.dataclass
class ImageView:
    """An image with its custom properties, tags and the stores holding its data."""

    image: m.Image
    properties: dict[str, str]
    tags: list[str]
    stores: list[str]
    member_status: str | None = None  # the caller's membership, when a member


@dataclasses.dataclass
class Usage:
    limit: int | None
    usage: int


class DataPipeline:
    """Counts, hashes and inspects a stream of chunks, re-chunked to ``chunk_size`` blocks.

    ``max_bytes`` ends the stream with ``too_large`` (413) once more would arrive. With
    ``disk_format`` set, the data must match it (Glance's rules, see :mod:`formats`)."""

    def __init__(self, source: AsyncIterable[bytes], *, chunk_size: int, max_bytes: int | None,
                 too_large: str, disk_format: str | None, inspect: bool, hash_algo: str = "sha512"):
        self.source = source
        self.chunk_size = chunk_size
        self.max_bytes = max_bytes
        self.too_large = too_large
        self.disk_format = disk_format
        self.inspector = formats.StreamInspector() if inspect else None
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.hash_algo = hash_algo
        self.os_hash = hashlib.new(hash_algo)
        self.size = 0
        self.verdict: formats.Verdict | None = None

    def _start_hashing(self, loop: asyncio.AbstractEventLoop, block: bytes) -> asyncio.Future[Any]:
        """md5 and the os_hash of ``block`` on two threads at once (hashlib lets go of the GIL)."""
        return asyncio.gather(loop.run_in_executor(None, self.md5.update, block),
                              loop.run_in_executor(None, self.os_hash.update, block))

    def _take(self, block: bytes) -> None:
        self.size += len(block)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise RequestTooLarge(self.too_large)
        if self.inspector is not None:
            self.inspector.feed(block)
            unsafe = self.inspector.early_unsafe()
            if unsafe:
                raise UnsupportedMediaType("Image failed safety checks: " + "; ".join(unsafe))

    async def _blocks(self) -> AsyncIterator[bytes]:
        """The source re-chunked into blocks of at least ``chunk_size`` (the last may be shorter)."""
        pending: list[bytes] = []
        held = 0
        async for chunk in self.source:
            pending.append(chunk)
            held += len(chunk)
            if held >= self.chunk_size:
                yield pending[0] if len(pending) == 1 else b"".join(pending)
                pending.clear()
                held = 0
        if held:
            yield b"".join(pending)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        hashing: asyncio.Future[Any] | None = None
        try:
            async for block in self._blocks():
                self._take(block)
                if hashing is not None:
                    await hashing
                # hash in threads while the store writes the same block
                hashing = self._start_hashing(loop, block)
                yield block
            if hashing is not None:
                await hashing
                hashing = None
            self._finish()
        finally:
            if hashing is not None and not hashing.done():
                await asyncio.wait([hashing])

    def _finish(self) -> None:
        if self.inspector is None:
            self.verdict = formats.Verdict("raw", self.size if self.disk_format == "raw" else None)
            return
        try:
            self.verdict = formats.check_upload(self.inspector, self.disk_format)
        except formats.SafetyCheckFailed as exc:
            raise UnsupportedMediaType(str(exc)) from None
        except formats.ImageFormatError as exc:
            raise UnsupportedMediaType(str(exc)) from None

    @property
    def checksum(self) -> str:
        return self.md5.hexdigest()

    @property
    def os_hash_value(self) -> str:
        return self.os_hash.hexdigest()


def _quota_message(project: str, resource: str, limit: int, usage: int, delta: int) -> str:
    return (f"Project {project} is over a limit for [Resource {resource} is over limit of {limit} "
            f"due to current usage {usage} and delta {delta}]")


class ImageService:
    def __init__(self, db: Database, config: ImageConfig, data_dir: Path, identity: IdentityService):
        self.db = db
        self.config = config
        self.data_dir = data_dir
        self.identity = identity
        if config.default_store not in config.stores:
            raise ValueError(f"[image] default_store {config.default_store!r} is not in stores {config.stores}")
        if config.hashing_algorithm not in hashlib.algorithms_available:
            raise ValueError(f"[image] hashing_algorithm {config.hashing_algorithm!r} is not available")
        self.stores: dict[str, ImageStore] = {}
        for name in config.stores:
            options = getattr(config, name) if name in ("file", "fake", "rbd") else config.backends.get(name)
            if options is None:
                raise ValueError(f"[image] store {name!r} needs an [image.backends.{name}] table with its driver")
            self.stores[name] = load_store(name, options, data_dir)
        self.staging = FileStore(STAGING_STORE, data_dir / "image-staging", "Staging area for image import")
        self.tasks = TaskQueue(db, lease_seconds=config.task_lease_seconds)
        self.tasks.register(IMPORT_TASK, self._run_import, on_failure=self._import_failed)

    async def close(self) -> None:
        await self.tasks.stop()
        for store in self.stores.values():
            await store.close()

    def start(self) -> None:
        """Start this process's task worker (needs a running event loop)."""
        self.tasks.start()

    @property
    def default_store(self) -> str:
        return self.config.default_store

    # ------------------------------------------------------------------ reading images

    def _visible(self, caller: Caller, member_status: str = "all") -> sa.ColumnElement[bool]:
        """Images the caller may see at all (Glance's rules): an admin every one, others the public
        and community ones, their project's, and shared ones their project is a member of (with
        ``member_status``, when not ``all``)."""
        if caller.is_admin:
            return sa.true()
        conditions = [m.Image.visibility.in_(("public", "community"))]
        if caller.project_id is not None:
            member = sa.select(m.ImageMember.image_id).where(m.ImageMember.member == caller.project_id)
            if member_status != "all":
                member = member.where(m.ImageMember.status == member_status)
            conditions += [m.Image.owner == caller.project_id,
                           sa.and_(m.Image.visibility == "shared", m.Image.id.in_(member))]
        return sa.or_(*conditions)

    async def get_image(self, session: AsyncSession, caller: Caller, image_id: str,
                        *, for_update: bool = False) -> m.Image:
        query = sa.select(m.Image).where(m.Image.id == image_id, self._visible(caller),
                                         m.Image.status != "deleted")
        if for_update and not self.db.is_sqlite:
            query = query.with_for_update()
        image = (await session.execute(query)).scalar()
        if image is None:
            raise NotFound(f"No image found with ID {image_id}")
        return image

    async def views(self, session: AsyncSession, images: Sequence[m.Image], caller: Caller | None = None) -> list[ImageView]:
        ids = [i.id for i in images]
        props: dict[str, dict[str, str]] = {i: {} for i in ids}
        tags: dict[str, list[str]] = {i: [] for i in ids}
        stores: dict[str, list[str]] = {i: [] for i in ids}
        members: dict[str, str] = {}
        if ids:
            for row in await session.execute(sa.select(m.ImageProperty).where(m.ImageProperty.image_id.in_(ids))):
                prop = row[0]
                props[prop.image_id][prop.name] = prop.value
            for row in await session.execute(sa.select(m.ImageTag.image_id, m.ImageTag.value)
                                             .where(m.ImageTag.image_id.in_(ids)).order_by(m.ImageTag.value)):
                tags[row[0]].append(row[1])
            for row in await session.execute(sa.select(m.ImageLocation.image_id, m.ImageLocation.store)
                                             .where(m.ImageLocation.image_id.in_(ids))
                                             .order_by(m.ImageLocation.created_at, m.ImageLocation.store)):
                stores[row[0]].append(row[1])
            if caller is not None and caller.project_id:
                for row in await session.execute(sa.select(m.ImageMember.image_id, m.ImageMember.status).where(
                        m.ImageMember.image_id.in_(ids), m.ImageMember.member == caller.project_id)):
                    members[row[0]] = row[1]
        return [ImageView(i, props[i.id], tags[i.id], stores[i.id], members.get(i.id)) for i in images]

    async def view(self, session: AsyncSession, image: m.Image, caller: Caller | None = None) -> ImageView:
        return (await self.views(session, [image], caller))[0]

    async def list_images(self, session: AsyncSession, caller: Caller, *,
                          conditions: Sequence[sa.ColumnElement[bool]] = (),
                          tags: Sequence[str] = (), properties: dict[str, str] | None = None,
                          member_status: str = "accepted", visibility: str | None = None,
                          sort: Sequence[tuple[str, str]] = (("created_at", "desc"),),
                          limit: int | None = None, marker: str | None = None) -> tuple[list[m.Image], bool]:
        """One page of the images the caller sees; (images, whether more follow)."""
        query = sa.select(m.Image).where(m.Image.status.notin_(("killed", "deleted")),
                                         self._visible(caller, member_status))
        if visibility is not None:
            if visibility != "all":
                query = query.where(m.Image.visibility == visibility)
        elif caller.project_id is None:
            query = query.where(m.Image.visibility != "community")
        else:
            query = query.where(sa.or_(m.Image.owner == caller.project_id, m.Image.visibility != "community"))
        for condition in conditions:
            query = query.where(condition)
        for tag in tags:
            query = query.where(m.Image.id.in_(sa.select(m.ImageTag.image_id).where(m.ImageTag.value == tag)))
        for key, value in (properties or {}).items():
            query = query.where(m.Image.id.in_(sa.select(m.ImageProperty.image_id).where(
                m.ImageProperty.name == key, m.ImageProperty.value == value)))
        keys = list(sort)
        names = [k for k, _ in keys]
        default_dir = keys[0][1] if keys else "desc"
        for extra in ("created_at", "id"):
            if extra not in names:
                keys.append((extra, default_dir))
        columns = [(getattr(m.Image, k), d == "desc") for k, d in keys]
        if marker is not None:
            marker_row = (await session.execute(
                sa.select(*(c for c, _ in columns)).where(m.Image.id == marker, self._visible(caller)))).first()
            if marker_row is None:
                raise BadRequest(f"Invalid marker. Image {marker} could not be found.")
            clauses = []
            for i, (column, desc) in enumerate(columns):
                equal = [_eq(columns[j][0], marker_row[j]) for j in range(i)]
                value = marker_row[i]
                if value is None:
                    # NULLs sort first ascending (as SQLite does; PostgreSQL is told to do the same)
                    after = column.is_not(None) if not desc else sa.false()
                else:
                    after = (column < value) if desc else sa.or_(column > value)
                    if desc:
                        after = sa.or_(after, column.is_(None))
                clauses.append(sa.and_(*equal, after))
            query = query.where(sa.or_(*clauses))
        order = []
        for column, desc in columns:
            order.append(column.desc().nulls_last() if desc else column.asc().nulls_first())
        query = query.order_by(*order)
        if limit is not None:
            query = query.limit(limit + 1)
        images = list((await session.execute(query)).scalars())
        more = limit is not None and len(images) > limit
        return images[:limit] if limit is not None else images, more

    # ------------------------------------------------------------------ creating and changing

    async def create_image(self, session: AsyncSession, caller: Caller, fields: dict[str, Any],
                           properties: dict[str, str], tags: Sequence[str]) -> m.Image:
        image_id = fields.pop("id", None) or m.new_id()
        if await session.get(m.Image, image_id) is not None:
            raise Conflict(f"An image with identifier {image_id} already exists")
        owner = fields.pop("owner", None) or caller.project_id
        self._check_counts(properties, tags)
        await self._enforce_count(session, owner, "image_count_total", 1)
        now = utcnow()
        image = m.Image(id=image_id, owner=owner, status="queued", visibility=fields.pop("visibility", None) or "shared",
                        min_disk=fields.pop("min_disk", None) or 0, min_ram=fields.pop("min_ram", None) or 0,
                        protected=bool(fields.pop("protected", False)), os_hidden=bool(fields.pop("os_hidden", False)),
                        created_at=now, updated_at=now, **fields)
        session.add(image)
        await session.flush()
        for key, value in properties.items():
            session.add(m.ImageProperty(image_id=image.id, name=key, value=value))
        for tag in dict.fromkeys(tags):
            session.add(m.ImageTag(image_id=image.id, value=tag))
        await session.flush()
        return image

    def _check_counts(self, properties: dict[str, str], tags: Sequence[str]) -> None:
        if 0 <= self.config.image_property_quota < len(properties):
            raise RequestTooLarge(f"Attempted: {len(properties)}, Maximum: {self.config.image_property_quota}: "
                                  "the image has too many properties")
        if 0 <= self.config.image_tag_quota < len(set(tags)):
            raise RequestTooLarge(f"Attempted: {len(set(tags))}, Maximum: {self.config.image_tag_quota}: "
                                  "the image has too many tags")

    async def update_image(self, session: AsyncSession, caller: Caller, image: m.Image,
                           changes: Sequence[dict[str, Any]]) -> m.Image:
        """Apply JSON-patch ``changes`` (already parsed: op, path list, value) in order."""
        view = await self.view(session, image)
        props = dict(view.properties)
        tags = list(view.tags)
        columns: dict[str, Any] = {}
        for change in changes:
            op, path = change["op"], change["path"]
            key = path[0]
            if key in ("locations",):
                raise Forbidden("It's not allowed to update locations if locations are invisible.")
            if key == "tags":
                if op == "remove":
                    raise Forbidden("Property tags may not be removed.")
                tags = list(dict.fromkeys(change["value"]))
                continue
            if op == "add" and change.get("version") == 4 and (key in BASE or key in props):
                raise Conflict(f"Property {key} already present.")  # the v2.0 patch form does not overwrite
            if key in BASE:
                if op == "remove":
                    raise Forbidden(f"Property {key} may not be removed.")
                value = change["value"]
                if key in ("disk_format", "container_format") and image.status != "queued" \
                        and value != getattr(image, key):
                    raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
                if key == "owner" and not caller.is_admin and value != image.owner:
                    raise Forbidden("Owner can't be updated by non admin.")
                columns[key] = value
                continue
            if op == "add":
                props[key] = change["value"]
            elif op == "replace":
                if key not in props:
                    raise Conflict(f"Property {key} does not exist.")
                props[key] = change["value"]
            else:
                if key not in props:
                    raise Conflict(f"Property {key} does not exist.")
                del props[key]
        self._check_counts(props, tags)
        for key, value in columns.items():
            if key in ("min_disk", "min_ram"):
                value = value or 0
            setattr(image, key, value)
        old_props = view.properties
        for key in set(old_props) - set(props):
            await session.execute(sa.delete(m.ImageProperty).where(m.ImageProperty.image_id == image.id,
                                                                   m.ImageProperty.name == key))
        for key, value in props.items():
            if key not in old_props:
                session.add(m.ImageProperty(image_id=image.id, name=key, value=value))
            elif old_props[key] != value:
                await session.execute(sa.update(m.ImageProperty).where(
                    m.ImageProperty.image_id == image.id, m.ImageProperty.name == key).values(value=value))
        if tags != view.tags:
            await session.execute(sa.delete(m.ImageTag).where(m.ImageTag.image_id == image.id))
            for tag in tags:
                session.add(m.ImageTag(image_id=image.id, value=tag))
        image.updated_at = utcnow()
        await session.flush()
        return image

    async def delete_image(self, caller: Caller, image_id: str) -> None:
        async with self.db.write() as session:
            image = await self.get_image(session, caller, image_id, for_update=True)
            if image.protected:
                raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
            locations = list((await session.execute(
                sa.select(m.ImageLocation).where(m.ImageLocation.image_id == image_id))).scalars())
            staged = image.staged_location
            # as Glance: data that servers or volumes were cloned from keeps its image (409);
            # the row goes only once the stores have let go of the data
            for loc in locations:
                await self._delete_data(loc.store, loc.url)
            await session.execute(sa.delete(m.Image).where(m.Image.id == image_id))
        if staged:
            await self._delete_data(STAGING_STORE, staged)

    async def delete_from_store(self, caller: Caller, image_id: str, store_id: str) -> None:
        """DELETE /v2/stores/{store}/{image}: drop one copy of an image's data, never the last."""
        if store_id not in self.stores:
            raise Conflict(f"The selected store {store_id} is not available on this node.")
        async with self.db.write() as session:
            image = await self.get_image(session, caller, image_id, for_update=True)
            if image.status != "active":
                raise Conflict("It's not allowed to remove image data from store if image status is not 'active'")
            locations = list((await session.execute(sa.select(m.ImageLocation).where(
                m.ImageLocation.image_id == image_id))).scalars())
            chosen = [loc for loc in locations if loc.store == store_id]
            if not chosen:
                raise NotFound(f"Image {image_id} is not stored in store {store_id}.")
            if len(locations) == 1:
                raise Forbidden("Cannot delete image data from the only store containing it. Consider deleting "
                                "the image instead.")
            await self._delete_data(store_id, chosen[0].url)  # data in use: 409, the location stays
            await session.delete(chosen[0])
            image.updated_at = utcnow()

    async def _delete_data(self, store_id: str, url: str) -> None:
        store = self.staging if store_id == STAGING_STORE else self.stores.get(store_id)
        if store is None:
            log.warning("image data at %s is in store %s, which is not enabled: left in place", url, store_id)
            return
        try:
            await store.delete(url)
        except InUse as exc:
            raise Conflict(f"Image data is in use and cannot be deleted: {exc}") from None
        except Exception:  # noqa: BLE001 (the image is gone either way; the data is logged)
            log.exception("could not delete image data at %s", url)

    async def add_tag(self, session: AsyncSession, image: m.Image, tag: str) -> None:
        existing = set((await session.execute(sa.select(m.ImageTag.value).where(
            m.ImageTag.image_id == image.id))).scalars())
        if tag in existing:
            return
        if 0 <= self.config.image_tag_quota <= len(existing):
            raise RequestTooLarge(f"Maximum number of tags exceeded: {self.config.image_tag_quota}")
        session.add(m.ImageTag(image_id=image.id, value=tag))
        image.updated_at = utcnow()

    async def delete_tag(self, session: AsyncSession, image: m.Image, tag: str) -> None:
        result = await session.execute(sa.delete(m.ImageTag).where(m.ImageTag.image_id == image.id,
                                                                  m.ImageTag.value == tag))
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFound(f"Tag {tag} not found on image {image.id}")
        image.updated_at = utcnow()

    async def deactivate(self, image: m.Image) -> None:
        self._flip(image, "deactivate", "active", "deactivated")

    async def reactivate(self, image: m.Image) -> None:
        self._flip(image, "reactivate", "deactivated", "active")

    @staticmethod
    def _flip(image: m.Image, action: str, source: str, goal: str) -> None:
        """Deactivate or reactivate: only from ``source`` (``goal`` already is a no-op)."""
        if image.status == goal:
            return
        if image.status != source:
            raise Forbidden(f"Not allowed to {action} image in status '{image.status}'")
        image.status = goal
        image.updated_at = utcnow()

    # ------------------------------------------------------------------ members

    async def members(self, session: AsyncSession, caller: Caller, image: m.Image) -> list[m.ImageMember]:
        query = sa.select(m.ImageMember).where(m.ImageMember.image_id == image.id)
        if not caller.is_admin and image.owner != caller.project_id:
            query = query.where(m.ImageMember.member == caller.project_id)
        return list((await session.execute(query.order_by(m.ImageMember.created_at, m.ImageMember.member))).scalars())

    async def get_member(self, session: AsyncSession, caller: Caller, image: m.Image, member_id: str) -> m.ImageMember:
        member = await session.get(m.ImageMember, (image.id, member_id))
        if member is None or (not caller.is_admin and caller.project_id not in (image.owner, member_id)):
            raise NotFound(f"Member {member_id} not found on image {image.id}")
        return member

    async def add_member(self, session: AsyncSession, caller: Caller, image: m.Image, member_id: str) -> m.ImageMember:
        if image.visibility != "shared":
            raise Forbidden("Only shared images have members.")
        if not caller.is_admin and image.owner != caller.project_id:
            raise Forbidden("Only the owner of an image can add members to it.")
        if await session.get(m.ImageMember, (image.id, member_id)) is not None:
            raise Conflict(f"Member {member_id} already exists on image {image.id}: it is already a member of "
                           "the image.")
        count = (await session.execute(sa.select(sa.func.count()).select_from(m.ImageMember)
                                       .where(m.ImageMember.image_id == image.id))).scalar() or 0
        if 0 <= self.config.image_member_quota <= count:
            raise RequestTooLarge(f"The limit has been exceeded on the number of allowed image members for this "
                                  f"image. Attempted: {count + 1}, Maximum: {self.config.image_member_quota}")
        now = utcnow()
        member = m.ImageMember(image_id=image.id, member=member_id, status="pending", created_at=now, updated_at=now)
        session.add(member)
        await session.flush()
        return member

    async def update_member(self, session: AsyncSession, caller: Caller, image: m.Image, member_id: str,
                            status: str) -> m.ImageMember:
        member = await self.get_member(session, caller, image, member_id)
        if status not in MEMBER_STATUSES:
            raise BadRequest(f"Provided status of {status} is not valid: use pending, accepted or rejected.")
        if not caller.is_admin and caller.project_id != member_id:
            raise Forbidden("Only the member can change its membership status.")
        member.status = status
        member.updated_at = utcnow()
        return member

    async def delete_member(self, session: AsyncSession, caller: Caller, image: m.Image, member_id: str) -> None:
        member = await self.get_member(session, caller, image, member_id)
        if not caller.is_admin and image.owner != caller.project_id:
            raise Forbidden(f"You are not permitted to delete member {member_id} of image {image.id}.")
        await session.delete(member)

    # ------------------------------------------------------------------ quotas (identity's unified limits)

    async def _limit(self, session: AsyncSession, owner: str | None, name: str) -> int | None:
        if not self.config.use_keystone_limits or owner is None:
            return None
        limit = await self.identity.effective_limit(session, owner, "image", name)
        return None if limit is None or limit < 0 else limit

    async def usage(self, session: AsyncSession, owner: str, name: str) -> int:
        """Glance's usage counts (sizes in bytes)."""
        if name == "image_count_total":
            query = sa.select(sa.func.count()).select_from(m.Image).where(m.Image.owner == owner,
                                                                          m.Image.status != "deleted")
        elif name == "image_count_uploading":
            query = sa.select(sa.func.count()).select_from(m.Image).where(
                m.Image.owner == owner, m.Image.status.in_(("saving", "uploading", "importing")))
        elif name == "image_size_total":
            query = sa.select(sa.func.coalesce(sa.func.sum(m.Image.size), 0)).where(m.Image.owner == owner)
        elif name == "image_stage_total":
            query = sa.select(sa.func.coalesce(sa.func.sum(m.Image.staged_size), 0)).where(m.Image.owner == owner)
        else:
            raise ValueError(name)
        return int((await session.execute(query)).scalar() or 0)

    async def usages(self, session: AsyncSession, owner: str) -> dict[str, Usage]:
        out = {}
        for name in ("image_size_total", "image_stage_total", "image_count_total", "image_count_uploading"):
            used = await self.usage(session, owner, name)
            if name in ("image_size_total", "image_stage_total"):
                used //= MiB
            out[name] = Usage(await self._limit(session, owner, name), used)
        return out

    async def _enforce_count(self, session: AsyncSession, owner: str | None, name: str, delta: int) -> None:
        limit = await self._limit(session, owner, name)
        if limit is None:
            return
        used = await self.usage(session, owner or "", name)
        if used + delta > limit:
            raise RequestTooLarge(_quota_message(owner or "", name, limit, used, delta))

    async def _bytes_left(self, session: AsyncSession, owner: str | None, name: str, delta_bytes: int) -> int | None:
        """Bytes the owner may still add under limit ``name`` (MiB in identity); 413 when none."""
        limit = await self._limit(session, owner, name)
        if limit is None:
            return None
        used = await self.usage(session, owner or "", name)
        if used + delta_bytes > limit * MiB:
            raise RequestTooLarge(_quota_message(owner or "", name, limit, used // MiB, delta_bytes // MiB))
        return max(limit * MiB - used, 0)

    # ------------------------------------------------------------------ data: upload, stage, download

    def store(self, store_id: str | None) -> ImageStore:
        name = store_id or self.default_store
        store = self.stores.get(name)
        if store is None:
            raise BadRequest(f"Store for identifier {name} not found")
        return store

    def _pipeline(self, chunks: AsyncIterable[bytes], image: m.Image, room: int | None,
                  quota_name: str, inspect: bool) -> DataPipeline:
        cap = self.config.image_size_cap
        max_bytes = cap if room is None else min(cap, room)
        too_large = (f"Image exceeds the storage quota ({quota_name})" if room is not None and room < cap
                     else f"Denying attempt to upload image larger than {cap} bytes.")
        return DataPipeline(chunks, chunk_size=self.config.chunk_size, max_bytes=max_bytes, too_large=too_large,
                            disk_format=image.disk_format if inspect else None,
                            inspect=inspect and self.config.inspect_formats and image.container_format == "bare",
                            hash_algo=self.config.hashing_algorithm)

    async def upload(self, caller: Caller, image_id: str, chunks: AsyncIterable[bytes], *,
                     size_hint: int | None = None, store_id: str | None = None) -> None:
        """PUT /file: stream the data into a store; the image ends active, or queued again."""
        store = self.store(store_id)
        self._check_cap(size_hint)
        async with self.db.write() as session:
            image = await self.get_image(session, caller, image_id, for_update=True)
            if image.status != "queued":
                raise Conflict(f"Image status transition from {image.status} to saving is not allowed")
            await self._enforce_count(session, image.owner, "image_count_uploading", 1)
            room = await self._bytes_left(session, image.owner, "image_size_total", size_hint or 0)
            image.status = "saving"
            image.updated_at = utcnow()
            owner = image.owner
        pipeline = self._pipeline(chunks, image, room, "image_size_total", inspect=True)
        try:
            stored = await store.add(image_id, pipeline)
        except BaseException as exc:
            await self._restore(image_id, "saving", "queued")
            if isinstance(exc, StoreFull):
                raise RequestTooLarge(f"Image storage media is full: {exc}") from None
            if isinstance(exc, StoreError):
                raise ServiceUnavailable(f"Error in store configuration or access: {exc}") from None
            raise
        try:
            async with self.db.write() as session:
                image = await session.get(m.Image, image_id)
                if image is None or image.status != "saving":
                    raise Gone(f"Image {image_id} could not be found after upload. The image may have been "
                               "deleted during the upload, cleaning up the chunks uploaded.")
                # another upload may have finished the quota meanwhile: check again with the real size
                limit = await self._limit(session, owner, "image_size_total")
                if limit is not None:
                    used = await self.usage(session, owner or "", "image_size_total")
                    if used + stored.size > limit * MiB:
                        raise RequestTooLarge(_quota_message(owner or "", "image_size_total", limit, used // MiB,
                                                             stored.size // MiB))
                self._activate(session, image, pipeline, stored.size)
                session.add(m.ImageLocation(image_id=image_id, store=store.id, url=stored.location,
                                            created_at=utcnow()))
        except BaseException:
            await store.delete(stored.location)
            await self._restore(image_id, "saving", "queued")
            raise

    def _check_cap(self, size_hint: int | None) -> None:
        """A declared size over the cap is refused before a byte is read."""
        if size_hint is not None and size_hint > self.config.image_size_cap:
            raise RequestTooLarge(f"Denying attempt to upload image larger than {self.config.image_size_cap} bytes.")

    def _activate(self, session: AsyncSession, image: m.Image, pipeline: DataPipeline, size: int) -> None:
        image.size = size
        image.checksum = pipeline.checksum
        image.os_hash_algo = pipeline.hash_algo
        image.os_hash_value = pipeline.os_hash_value
        verdict = pipeline.verdict
        if verdict is not None and verdict.virtual_size is not None:
            image.virtual_size = verdict.virtual_size
        image.status = "active"
        image.updated_at = utcnow()

    async def _restore(self, image_id: str, from_status: str, to_status: str) -> None:
        async with self.db.write() as session:
            await session.execute(sa.update(m.Image).where(m.Image.id == image_id, m.Image.status == from_status)
                                  .values(status=to_status, updated_at=utcnow()))

    async def stage(self, caller: Caller, image_id: str, chunks: AsyncIterable[bytes], *,
                    size_hint: int | None = None) -> None:
        """PUT /stage: keep the data in the staging area; the image becomes ``uploading``."""
        self._check_cap(size_hint)
        async with self.db.write() as session:
            image = await self.get_image(session, caller, image_id, for_update=True)
            if image.status != "queued":
                raise Conflict(f"Image status transition from {image.status} to uploading is not allowed")
            await self._enforce_count(session, image.owner, "image_count_uploading", 1)
            room = await self._bytes_left(session, image.owner, "image_stage_total", size_hint or 0)
            image.status = "uploading"
            image.updated_at = utcnow()
        pipeline = self._pipeline(chunks, image, room, "image_stage_total", inspect=False)
        try:
            stored = await self.staging.add(image_id, pipeline)
        except BaseException:
            await self._restore(image_id, "uploading", "queued")
            raise
        try:
            async with self.db.write() as session:
                image = await session.get(m.Image, image_id)
                if image is None or image.status != "uploading":
                    raise Gone(f"Image {image_id} could not be found after staging.")
                image.staged_location = stored.location
                image.staged_size = stored.size
                image.updated_at = utcnow()
        except BaseException:
            await self.staging.delete(stored.location)
            await self._restore(image_id, "uploading", "queued")
            raise

    async def data_location(self, session: AsyncSession, image: m.Image) -> m.ImageLocation | None:
        rows = await session.execute(sa.select(m.ImageLocation).where(m.ImageLocation.image_id == image.id)
                                     .order_by(m.ImageLocation.created_at, m.ImageLocation.store))
        for loc in rows.scalars():
            if loc.store in self.stores:
                return loc
        return None

    def read(self, location: m.ImageLocation, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self.stores[location.store].read(location.url, offset, length)

    # ------------------------------------------------------------------ import

    def import_methods(self) -> list[str]:
        known = ("glance-direct", "web-download", "copy-image")
        return [m_ for m_ in self.config.import_methods if m_ in known and (m_ != "copy-image" or len(self.stores) > 1)]

    def web_download_allowed(self, uri: str) -> bool:
        """Whether ``uri`` lies under one of the operator's allowed URL prefixes: same scheme, host
        and port, its path under the prefix's path, and no user name, password or fragment."""
        target = _url_parts(uri)
        if target is None:
            return False
        for prefix in self.config.web_download_allowed:
            allowed = _url_parts(prefix)
            if allowed is None or allowed[:3] != target[:3]:
                continue
            base = allowed[3]
            if target[3] == base or target[3].startswith(base if base.endswith("/") else base + "/"):
                return True
        return False

    async def start_import(self, caller: Caller, image_id: str, method: str, *, uri: str | None = None,
                           stores: Sequence[str] | None = None, all_stores: bool = False,
                           all_stores_must_succeed: bool = True, request_id: str | None = None,
                           import_req: dict[str, Any] | None = None) -> str:
        if method not in self.import_methods():
            raise BadRequest(f"Unknown import method name '{method}'.")
        if all_stores and stores:
            raise BadRequest("All_stores parameter can't be used with x-image-meta-store header or stores "
                             "parameter")
        targets = list(self.stores) if all_stores else list(stores or [self.default_store])
        for name in targets:
            if name not in self.stores:
                raise Conflict(f"Store for identifier {name} not found")
        if method == "web-download":
            if not uri:
                raise BadRequest("Import request for web-download requires a 'uri' field.")
            if not self.web_download_allowed(uri):
                raise BadRequest(f"URI for web-download does not pass filtering: {uri}")
        async with self.db.write() as session:
            image = await self.get_image(session, caller, image_id, for_update=True)
            if method == "copy-image":
                return await self._start_copy(session, caller, image, targets, all_stores, request_id,
                                              import_req)
            if image.status == "active":
                raise Conflict("Image with status active cannot be target for import")
            if method == "glance-direct" and image.status != "uploading":
                if image.status == "importing":
                    raise Conflict(f"New operation on image '{image_id}' is not permitted as prior operation "
                                   "is still in progress")
                raise Conflict("Image needs to be staged before 'glance-direct' method can be used")
            if method == "web-download" and image.status != "queued":
                if image.status == "importing":
                    raise Conflict(f"New operation on image '{image_id}' is not permitted as prior operation "
                                   "is still in progress")
                raise Conflict("Image needs to be in 'queued' state to use 'web-download' method")
            if not image.container_format:
                raise Conflict("'container_format' needs to be set before import")
            if not image.disk_format:
                raise Conflict("'disk_format' needs to be set before import")
            if method == "web-download":
                await self._enforce_count(session, image.owner, "image_count_uploading", 1)
            await self._bytes_left(session, image.owner, "image_size_total", 0)
            task = await self.tasks.submit(session, IMPORT_TASK, {
                "image_id": image_id, "method": method, "uri": uri, "stores": targets,
                "all_stores_must_succeed": all_stores_must_succeed, "from_status": image.status,
                "request_id": request_id, "import_req": import_req or {"method": {"name": method}}},
                resource_id=image_id, owner_project=image.owner)
            image.status = "importing"
            image.updated_at = utcnow()
            await self._set_props(session, image_id, {
                "os_glance_import_task": task.id,
                "os_glance_importing_to_stores": ",".join(targets),
                "os_glance_failed_import": ""})
        self.tasks.wake()
        return task.id

    async def _start_copy(self, session: AsyncSession, caller: Caller, image: m.Image, targets: list[str],
                          all_stores: bool, request_id: str | None, import_req: dict[str, Any] | None) -> str:
        """copy-image: an active image's data into more stores; the image stays active meanwhile.
        With ``all_stores`` the stores already holding it are skipped."""
        if image.status != "active":
            raise Conflict("Only images with status active can be targeted for copying")
        view = await self.view(session, image)
        if view.properties.get("os_glance_importing_to_stores"):
            raise Conflict(f"New operation on image '{image.id}' is not permitted as prior operation is still "
                           "in progress")
        already = [t for t in targets if t in view.stores]
        if all_stores:
            targets = [t for t in targets if t not in already]
        elif already:
            raise BadRequest(f"Image is already present at store '{already[0]}'")
        task = await self.tasks.submit(session, IMPORT_TASK, {
            "image_id": image.id, "method": "copy-image", "uri": None, "stores": targets,
            "all_stores_must_succeed": False, "from_status": "active", "request_id": request_id,
            "import_req": import_req or {"method": {"name": "copy-image"}}},
            resource_id=image.id, owner_project=image.owner)
        await self._set_props(session, image.id, {"os_glance_import_task": task.id,
                                                  "os_glance_importing_to_stores": ",".join(targets),
                                                  "os_glance_failed_import": ""})
        return task.id

    async def _run_copy(self, ctx: TaskContext, image_id: str) -> dict[str, Any]:
        targets = list(ctx.payload["stores"])
        async with self.db.read() as session:
            image = await session.get(m.Image, image_id)
            if image is None or image.status not in ("active", "deactivated"):
                return {"image_id": image_id, "skipped": "the image has no data to copy"}
            source = await self.data_location(session, image)
        if source is None:
            raise RuntimeError(f"image {image_id} has no readable location")
        copied, failed = [], []
        for i, store_id in enumerate(targets):
            try:
                result = await self.stores[store_id].add(image_id, self.read(source))
            except (StoreError, OSError, KeyError) as exc:
                log.warning("copy of %s into store %s failed: %s", image_id, store_id, exc)
                failed.append(store_id)
                continue
            async with self.db.write() as session:
                if await session.get(m.Image, image_id) is None:
                    await self.stores[store_id].delete(result.location)
                    raise Gone(f"Image {image_id} was deleted during the copy")
                await session.merge(m.ImageLocation(image_id=image_id, store=store_id, url=result.location,
                                                    created_at=utcnow()))
                await self._set_props(session, image_id, {
                    "os_glance_importing_to_stores": ",".join(targets[i + 1:])})
            copied.append(store_id)
            await ctx.progress(100 * (i + 1) // len(targets))
        async with self.db.write() as session:
            if await session.get(m.Image, image_id) is not None:
                await self._set_props(session, image_id, {"os_glance_importing_to_stores": "",
                                                          "os_glance_failed_import": ",".join(failed)})
        return {"image_id": image_id, "stores": copied, "failed_stores": failed}

    async def _set_props(self, session: AsyncSession, image_id: str, values: dict[str, str | None]) -> None:
        for key, value in values.items():
            await session.execute(sa.delete(m.ImageProperty).where(m.ImageProperty.image_id == image_id,
                                                                   m.ImageProperty.name == key))
            if value is not None:
                session.add(m.ImageProperty(image_id=image_id, name=key, value=value))
        await session.flush()

    async def _source(self, payload: dict[str, Any], image: m.Image) -> AsyncIterator[bytes]:
        if payload["method"] == "glance-direct":
            if not image.staged_location:
                raise RuntimeError("the staged data is gone")
            async for chunk in self.staging.read(image.staged_location):
                yield chunk
            return
        import httpx  # only the import worker fetches URLs

        uri = payload["uri"]
        if not self.web_download_allowed(uri):
            raise RuntimeError(f"URI for web-download does not pass filtering: {uri}")
        timeout = httpx.Timeout(self.config.web_download_timeout)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            async with client.stream("GET", uri) as response:
                if response.status_code != 200:
                    raise RuntimeError(f"web-download of {uri} answered HTTP {response.status_code}")
                async for chunk in response.aiter_raw(self.config.chunk_size):
                    yield chunk

    async def _run_import(self, ctx: TaskContext) -> dict[str, Any]:
        payload = ctx.payload
        image_id = payload["image_id"]
        if payload["method"] == "copy-image":
            return await self._run_copy(ctx, image_id)
        async with self.db.read() as session:
            image = await session.get(m.Image, image_id)
            if image is None or image.status != "importing":
                return {"image_id": image_id, "skipped": "the image is no longer importing"}
            props = (await self.view(session, image)).properties
            if props.get("os_glance_import_task") != ctx.id:
                return {"image_id": image_id, "skipped": "another import task owns the image"}
            owner = image.owner
            room = await self._limit(session, owner, "image_size_total")
            if room is not None:
                room = max(room * MiB - await self.usage(session, owner or "", "image_size_total"), 0)
        await ctx.progress(5, f"importing {image_id} by {payload['method']}")
        stored: list[tuple[str, str, int]] = []
        failed: list[str] = []
        pipeline: DataPipeline | None = None
        targets = list(payload["stores"])
        try:
            for i, store_id in enumerate(targets):
                store = self.stores.get(store_id)
                try:
                    if store is None:
                        raise StoreError(f"store {store_id} is not enabled")
                    if pipeline is None:
                        pipeline = self._pipeline(self._source(payload, image), image, room, "image_size_total",
                                                  inspect=True)
                        result = await store.add(image_id, pipeline)
                    else:  # further stores copy from the first
                        first = self.stores[stored[0][0]]
                        result = await store.add(image_id, first.read(stored[0][1]))
                    stored.append((store_id, result.location, result.size))
                except (StoreError, OSError) as exc:
                    if payload.get("all_stores_must_succeed", True) or pipeline is None or not stored:
                        raise
                    log.warning("import of %s into store %s failed: %s", image_id, store_id, exc)
                    failed.append(store_id)
                await ctx.progress(10 + 85 * (i + 1) // len(targets))
            assert pipeline is not None
            async with self.db.write() as session:
                image = await session.get(m.Image, image_id)
                if image is None or image.status != "importing":
                    raise Gone(f"Image {image_id} was deleted during the import")
                self._activate(session, image, pipeline, stored[0][2])
                staged = image.staged_location
                image.staged_location = None
                image.staged_size = None
                for store_id, url, _size in stored:
                    await session.merge(m.ImageLocation(image_id=image_id, store=store_id, url=url,
                                                        created_at=utcnow()))
                await self._set_props(session, image_id, {"os_glance_importing_to_stores": "",
                                                          "os_glance_failed_import": ",".join(failed)})
        except BaseException:
            for store_id, url, _size in stored:
                await self.stores[store_id].delete(url)
            raise
        if staged:
            await self.staging.delete(staged)
        return {"image_id": image_id, "stores": [s for s, _, _ in stored], "failed_stores": failed,
                "size": stored[0][2]}

    async def _import_failed(self, session: AsyncSession, task: Task, message: str) -> None:
        """The import task failed for good: the image goes back to ``queued`` and says which stores failed."""
        image_id = task.payload.get("image_id")
        image = await session.get(m.Image, image_id)
        if image is None:
            return
        props = (await self.view(session, image)).properties
        if props.get("os_glance_import_task") != task.id:
            return
        if task.payload.get("method") == "copy-image":  # the image keeps its data and stays active
            await self._set_props(session, image_id, {"os_glance_importing_to_stores": "",
                                                      "os_glance_failed_import": props.get(
                                                          "os_glance_importing_to_stores", "")})
            return
        if image.status != "importing":
            return
        staged = image.staged_location
        image.status = "queued"
        image.staged_location = None
        image.staged_size = None
        image.updated_at = utcnow()
        await self._set_props(session, image_id, {
            "os_glance_importing_to_stores": "",
            "os_glance_failed_import": ",".join(task.payload.get("stores") or [])})
        if staged:
            asyncio.get_running_loop().create_task(self.staging.delete(staged))

    async def image_tasks(self, session: AsyncSession, image: m.Image) -> list[Task]:
        return await self.tasks.for_resource(session, image.id)


def _url_parts(url: str | None) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path) of an http(s) URL without credentials or fragment, else None."""
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url or "")
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None \
            or parts.password is not None or parts.fragment or "\\" in (url or ""):
        return None
    path = unquote(parts.path or "/")
    if "/../" in path + "/" or "/./" in path + "/":
        return None
    return parts.scheme, parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80), path


def _eq(column: Any, value: Any) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


__all__ = ["APIError", "Caller", "DataPipeline", "ImageService", "ImageView"]
