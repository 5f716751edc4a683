"""Tables owned by the image service (prefix `image_`). Other services call image's service.py."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

import mcloud.core.tasks  # noqa: F401  (the image import runs as a core task: its table loads with ours)
from mcloud.core.db import Base

UUID = sa.String(36)
PROJECT = sa.String(64)


def new_id() -> str:
    """Glance's id form: a dashed UUID."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Naive UTC, second precision as Glance shows it, plus microseconds kept for ordering."""
    return datetime.utcnow()


class Image(Base):
    __tablename__ = "image_image"
    id: Mapped[str] = mapped_column(UUID, primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    status: Mapped[str] = mapped_column(sa.String(30), default="queued", index=True)
    visibility: Mapped[str] = mapped_column(sa.String(20), default="shared", index=True)
    owner: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    disk_format: Mapped[str | None] = mapped_column(sa.String(20))
    container_format: Mapped[str | None] = mapped_column(sa.String(20))
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    virtual_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    checksum: Mapped[str | None] = mapped_column(sa.String(32))
    os_hash_algo: Mapped[str | None] = mapped_column(sa.String(64))
    os_hash_value: Mapped[str | None] = mapped_column(sa.String(128))
    min_disk: Mapped[int] = mapped_column(sa.Integer, default=0)
    min_ram: Mapped[int] = mapped_column(sa.Integer, default=0)
    protected: Mapped[bool] = mapped_column(default=False)
    os_hidden: Mapped[bool] = mapped_column(default=False)
    # staged data (glance-direct) and its size, until the import task moves it into a store
    staged_location: Mapped[str | None] = mapped_column(sa.Text)
    staged_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ImageProperty(Base):
    """A custom (string) property, including Glance's ``os_glance_*`` ones."""

    __tablename__ = "image_property"
    image_id: Mapped[str] = mapped_column(UUID, sa.ForeignKey("image_image.id", ondelete="CASCADE"),
                                          primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text)


class ImageTag(Base):
    __tablename__ = "image_tag"
    image_id: Mapped[str] = mapped_column(UUID, sa.ForeignKey("image_image.id", ondelete="CASCADE"),
                                          primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(255), primary_key=True)


class ImageMember(Base):
    __tablename__ = "image_member"
    image_id: Mapped[str] = mapped_column(UUID, sa.ForeignKey("image_image.id", ondelete="CASCADE"),
                                          primary_key=True)
    member: Mapped[str] = mapped_column(sa.String(255), primary_key=True, index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImageLocation(Base):
    """Where an image's data is: one row per store holding a copy (Glance's locations)."""

    __tablename__ = "image_location"
    image_id: Mapped[str] = mapped_column(UUID, sa.ForeignKey("image_image.id", ondelete="CASCADE"),
                                          primary_key=True)
    store: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    url: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MetadefNamespace(Base):
    """A metadata definition namespace (Glance's metadefs catalog)."""

    __tablename__ = "image_metadef_namespace"
    namespace: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(sa.String(80))
    description: Mapped[str | None] = mapped_column(sa.Text)
    visibility: Mapped[str] = mapped_column(sa.String(32), default="private")
    protected: Mapped[bool] = mapped_column(default=False)
    owner: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MetadefItem(Base):
    """An object, property, tag or resource type association of a namespace, as its JSON body."""

    __tablename__ = "image_metadef_item"
    namespace: Mapped[str] = mapped_column(
        sa.String(80), sa.ForeignKey("image_metadef_namespace.namespace", ondelete="CASCADE", onupdate="CASCADE"),
        primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    body: Mapped[dict] = mapped_column(sa.JSON().with_variant(sa.JSON(), "sqlite"), default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
