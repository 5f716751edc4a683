"""The image service called from Python: stores loaded by config name, the file store's
all-or-nothing writes, and an import that survives its worker's death (resumed by the next
process) or fails cleanly with the image saying so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcloud import migrations
from mcloud.core.config import Config, ConfigError
from mcloud.core.db import Database
from mcloud.identity.config import IdentityConfig
from mcloud.identity.service import IdentityService
from mcloud.image import models as m
from mcloud.image.config import ImageConfig
from mcloud.image.drivers import load_store
from mcloud.image.drivers.fake import FakeStore
from mcloud.image.drivers.file import FileStore
from mcloud.image.service import Caller, ImageService


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def failing(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    raise ValueError("the client went away")


def test_stores_are_loaded_by_config_name(tmp_path):
    (tmp_path / "mcloud.toml").write_text(
        '[image]\nstores = ["file", "fake"]\ndefault_store = "fake"\n'
        '[image.file]\ndirectory = "%s"\n[image.fake]\ncapacity = 10\n' % (tmp_path / "elsewhere"))
    config = Config(data_dir=tmp_path, environ={}).section("image", ImageConfig)
    assert config.stores == ["file", "fake"] and config.default_store == "fake"
    store = load_store("file", config.file, tmp_path)
    assert isinstance(store, FileStore) and store.directory == tmp_path / "elsewhere"
    fake = load_store("fake", config.fake, tmp_path)
    assert isinstance(fake, FakeStore) and fake.capacity == 10
    with pytest.raises(ValueError, match="unknown driver"):
        load_store("tape", {}, tmp_path)
    with pytest.raises(ValueError, match="unknown keys"):
        load_store("file", {"colour": "blue"}, tmp_path)
    (tmp_path / "mcloud.toml").write_text('[image]\nstorez = ["file"]\n')
    with pytest.raises(ConfigError, match="unknown keys: storez"):
        Config(data_dir=tmp_path, environ={}).section("image", ImageConfig)


async def test_file_store_writes_all_or_nothing(tmp_path):
    store = FileStore("file", tmp_path / "images")
    stored = await store.add("img-1", chunks(b"abc", b"", b"def"))
    assert stored.size == 6 and stored.location.startswith("file://")
    assert b"".join([c async for c in store.read(stored.location)]) == b"abcdef"
    assert b"".join([c async for c in store.read(stored.location, 2, 3)]) == b"cde"
    with pytest.raises(ValueError):
        await store.add("img-2", failing(b"half"))
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["img-1"]
    await store.delete(stored.location)
    await store.delete(stored.location)  # already gone: fine
    assert list((tmp_path / "images").iterdir()) == []
    # a crash mid-write leaves only a temporary file, which the next start removes
    (tmp_path / "images" / ".tmp-img-3-abcd").write_bytes(b"partial")
    FileStore("file", tmp_path / "images")
    assert list((tmp_path / "images").iterdir()) == []


async def test_fake_store_keeps_nothing_of_a_failed_add():
    store = FakeStore(capacity=5)
    with pytest.raises(ValueError):
        await store.add("a", failing(b"12"))
    assert store.blobs == {}
    stored = await store.add("b", chunks(b"12", b"34"))
    assert b"".join([c async for c in store.read(stored.location, 1)]) == b"234"


@pytest.fixture
async def parts(tmp_path) -> AsyncIterator[tuple[Database, IdentityService, Path]]:
    url = f"sqlite:///{tmp_path / 'mcloud.db'}"
    migrations.upgrade(url)
    db = Database(url)
    identity = IdentityService(db, IdentityConfig(password_hash_rounds=4), tmp_path)
    yield db, identity, tmp_path
    await identity.close()
    await db.dispose()


def image_service(db: Database, identity: IdentityService, data_dir: Path, lease: float) -> ImageService:
    return ImageService(db, ImageConfig(task_lease_seconds=lease), data_dir, identity)


async def staged_image(service: ImageService, data: bytes) -> str:
    caller = Caller("project-1")
    async with service.db.write() as session:
        image = await service.create_image(session, caller, {"disk_format": "raw", "container_format": "bare"},
                                           {}, [])
    await service.stage(caller, image.id, chunks(data))
    await service.start_import(caller, image.id, "glance-direct")
    return image.id


async def test_an_import_whose_process_died_is_resumed_after_restart(parts):
    db, identity, data_dir = parts
    data = b"resume me" * 1000
    first = image_service(db, identity, data_dir, lease=0.2)
    image_id = await staged_image(first, data)
    # the first process claims the import task, then dies before running it
    assert await first.tasks.claim() is not None
    async with db.read() as session:
        assert (await session.get(m.Image, image_id)).status == "importing"
    # the next process resumes it once the lease has run out
    second = image_service(db, identity, data_dir, lease=5)
    await asyncio.sleep(0.3)
    assert await second.tasks.run_pending() == 1
    async with db.read() as session:
        image = await session.get(m.Image, image_id)
        view = await second.view(session, image)
        location = await second.data_location(session, image)
    assert image.status == "active" and image.size == len(data)
    assert view.properties["os_glance_failed_import"] == "" and view.stores == ["file"]
    assert b"".join([c async for c in second.read(location)]) == data
    await second.close()


async def test_an_import_that_cannot_finish_fails_cleanly(parts):
    db, identity, data_dir = parts
    service = image_service(db, identity, data_dir, lease=0.05)
    image_id = await staged_image(service, b"doomed")
    for _ in range(3):  # every attempt's worker dies
        assert await service.tasks.claim() is not None
        await asyncio.sleep(0.1)
    assert await service.tasks.claim() is None
    async with db.read() as session:
        image = await session.get(m.Image, image_id)
        view = await service.view(session, image)
        tasks = await service.image_tasks(session, image)
    assert image.status == "queued" and view.properties["os_glance_failed_import"] == "file"
    assert view.properties["os_glance_importing_to_stores"] == ""
    assert tasks[0].status == "failed" and "interrupted 3 times" in tasks[0].message
    await asyncio.sleep(0.05)  # the staged data is removed in the background
    assert not list((data_dir / "image-staging").glob(image_id))
    await service.close()


async def test_a_stopped_service_hands_its_import_back(parts):
    db, identity, data_dir = parts
    service = image_service(db, identity, data_dir, lease=30)
    gate = asyncio.Event()
    original = service._source

    async def slow_source(payload, image):  # type: ignore[no-untyped-def]
        await gate.wait()
        async for chunk in original(payload, image):
            yield chunk

    service._source = slow_source  # type: ignore[method-assign]
    service.tasks.poll_seconds = 0.05
    service.start()
    image_id = await staged_image(service, b"handed back")
    await asyncio.sleep(0.3)
    await service.close()  # a clean stop: the task is pending again at once, not after 30 s
    other = image_service(db, identity, data_dir, lease=30)
    assert await other.tasks.run_pending() == 1
    async with db.read() as session:
        assert (await session.get(m.Image, image_id)).status == "active"
    await other.close()


def test_migration_0004_matches_the_models(tmp_path):
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from mcloud.core.db import Base
    from mcloud.models import load_all

    load_all()
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrations.upgrade(url)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()

    def mine(item: object) -> bool:
        return any(name in repr(item) for name in ("image_", "core_task"))

    assert [d for d in diff if mine(d)] == []
    # and it comes off cleanly
    from alembic import command

    command.downgrade(migrations.alembic_config(url), "0003")
    engine = sa.create_engine(url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert not {t for t in tables if t.startswith("image_") or t == "core_task"}
    migrations.upgrade(url)


async def test_import_into_several_stores(parts):
    db, identity, data_dir = parts
    config = ImageConfig(stores=["file", "fake"], default_store="file", fake={"capacity": 100})
    service = ImageService(db, config, data_dir, identity)
    caller = Caller("project-2")

    async def staged(data: bytes, **kw: object) -> str:
        async with db.write() as session:
            image = await service.create_image(session, caller, {"disk_format": "raw", "container_format": "bare"},
                                               {}, [])
        await service.stage(caller, image.id, chunks(data))
        await service.start_import(caller, image.id, "glance-direct", **kw)  # type: ignore[arg-type]
        await service.tasks.run_pending()
        return image.id

    async def state(image_id: str) -> tuple[str, list[str], dict[str, str]]:
        async with db.read() as session:
            image = await session.get(m.Image, image_id)
            view = await service.view(session, image)
        return image.status, view.stores, view.properties

    # both stores take a small image
    status, stores, props = await state(await staged(b"small", stores=["file", "fake"]))
    assert status == "active" and stores == ["file", "fake"] and props["os_glance_failed_import"] == ""
    # all_stores: every enabled store
    status, stores, _ = await state(await staged(b"tiny", all_stores=True))
    assert stores == ["file", "fake"]
    # the fake store is full: allowed to fail, the image is active in the file store and says so
    status, stores, props = await state(await staged(b"x" * 500, stores=["file", "fake"],
                                                     all_stores_must_succeed=False))
    assert status == "active" and stores == ["file"] and props["os_glance_failed_import"] == "fake"
    # ... or not allowed to: the import fails, nothing stays in any store
    before = {p.name for p in (data_dir / "images").iterdir()}
    image_id = await staged(b"y" * 500, stores=["file", "fake"])
    status, stores, props = await state(image_id)
    assert status == "queued" and stores == [] and props["os_glance_failed_import"] == "file,fake"
    assert {p.name for p in (data_dir / "images").iterdir()} == before
    await service.close()


async def test_copy_image_into_another_store(parts):
    db, identity, data_dir = parts
    single = ImageService(db, ImageConfig(), data_dir, identity)
    assert "copy-image" not in single.import_methods()  # nothing to copy to with one store
    service = ImageService(db, ImageConfig(stores=["file", "fake"], default_store="file"), data_dir, identity)
    assert "copy-image" in service.import_methods()
    caller = Caller("project-3", is_admin=True)
    async with db.write() as session:
        image = await service.create_image(session, caller, {"disk_format": "raw", "container_format": "bare"},
                                           {}, [])
    from mcloud.core.errors import BadRequest, Conflict

    with pytest.raises(Conflict, match="status active"):
        await service.start_import(caller, image.id, "copy-image", stores=["fake"])
    await service.upload(caller, image.id, chunks(b"copy me"))
    with pytest.raises(BadRequest, match="already present"):
        await service.start_import(caller, image.id, "copy-image", stores=["file"])
    await service.start_import(caller, image.id, "copy-image", stores=["fake"])
    await service.tasks.run_pending()
    async with db.read() as session:
        img = await session.get(m.Image, image.id)
        view = await service.view(session, img)
    assert img.status == "active" and view.stores == ["file", "fake"]
    assert view.properties["os_glance_importing_to_stores"] == "" and view.properties["os_glance_failed_import"] == ""
    fake = service.stores["fake"]
    assert list(fake.blobs.values()) == [b"copy me"]  # type: ignore[attr-defined]
    await service.close()


async def test_two_file_stores_copy_and_delete_from_one(parts):
    db, identity, data_dir = parts
    (data_dir / "mcloud.toml").write_text(
        '[image]\nstores = ["file", "file2"]\n[image.backends.file2]\ndriver = "file"\n'
        f'directory = "{data_dir / "second"}"\n')
    config = Config(data_dir=data_dir, environ={}).section("image", ImageConfig)
    service = ImageService(db, config, data_dir, identity)
    assert isinstance(service.stores["file2"], FileStore)
    assert service.stores["file2"].directory == data_dir / "second"
    caller = Caller("project-4", is_admin=True)
    async with db.write() as session:
        image = await service.create_image(session, caller, {"disk_format": "raw", "container_format": "bare"},
                                           {}, [])
    await service.upload(caller, image.id, chunks(b"two copies"))
    # all_stores skips the store that already holds it
    await service.start_import(caller, image.id, "copy-image", all_stores=True)
    await service.tasks.run_pending()

    async def stores() -> list[str]:
        async with db.read() as session:
            return (await service.view(session, await session.get(m.Image, image.id))).stores

    assert await stores() == ["file", "file2"]
    assert [p.name for p in (data_dir / "second").iterdir()] == [image.id]
    from mcloud.core.errors import Conflict, Forbidden, NotFound

    with pytest.raises(Conflict):
        await service.delete_from_store(caller, image.id, "tape")
    await service.delete_from_store(caller, image.id, "file")
    assert await stores() == ["file2"]
    assert not (data_dir / "images" / image.id).exists()
    with pytest.raises(NotFound):
        await service.delete_from_store(caller, image.id, "file")
    with pytest.raises(Forbidden, match="only store"):
        await service.delete_from_store(caller, image.id, "file2")
    async with db.read() as session:
        location = await service.data_location(session, await session.get(m.Image, image.id))
    assert b"".join([c async for c in service.read(location)]) == b"two copies"
    (data_dir / "mcloud.toml").write_text('[image]\nstores = ["file", "nameless"]\n')
    with pytest.raises(ValueError, match="image.backends.nameless"):
        ImageService(db, Config(data_dir=data_dir, environ={}).section("image", ImageConfig), data_dir, identity)
    await service.close()


@pytest.mark.parametrize("uri,allowed", [
    ("http://127.0.0.1:8000/images/cirros.img", True),
    ("http://127.0.0.1:8000/images/sub/dir/x.qcow2", True),
    ("http://127.0.0.1:8000/images", False),  # the directory itself is not a file under it
    ("http://127.0.0.1:8000/imagesX/x.img", False),  # not under the prefix's path
    ("http://127.0.0.1:8000/images/../secret", False),
    ("http://127.0.0.1:8000/images/%2e%2e/secret", False),
    ("http://127.0.0.1:8001/images/x.img", False),  # another port
    ("https://127.0.0.1:8000/images/x.img", False),  # another scheme
    ("http://127.0.0.1:8000@evil.example/images/x.img", False),  # credentials trick
    ("http://user:pw@127.0.0.1:8000/images/x.img", False),
    ("http://127.0.0.1.evil.example:8000/images/x.img", False),
    ("http://127.0.0.1:8000\\@evil.example/images/x", False),
    ("file:///etc/passwd", False), ("ftp://127.0.0.1:8000/images/x", False), ("", False),
    ("http://EXAMPLE.org/pub/x.img", True),  # host names compare case-insensitively, default port
    ("http://example.org:80/pub/x.img", True),
    ("http://example.org:99999/pub/x.img", False),
])
def test_web_download_allow_list(tmp_path, uri, allowed):
    config = ImageConfig(stores=["fake"], default_store="fake",
                         web_download_allowed=["http://127.0.0.1:8000/images/", "http://example.org/pub"])
    service = ImageService(Database(f"sqlite:///{tmp_path / 'x.db'}"), config, tmp_path, None)  # type: ignore[arg-type]
    assert service.web_download_allowed(uri) is allowed
