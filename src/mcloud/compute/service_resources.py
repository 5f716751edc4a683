"""The things servers are made with: flavors (extra specs, access lists, the default flavors),
keypairs, and — through the mixins of ``service_resources_quotas.py`` and
``service_resources_groups.py`` — quotas, server groups, host aggregates and availability zones.

``ResourcesService`` (``compute.resources``) is also the internal API the other parts of compute
call (seam 3 of the compute contract): ``get_flavor_for_boot``, ``get_keypair``, ``check_quota``,
the server-group functions, aggregates and zones for the scheduler, ``make_default_flavors``.

Every function takes the caller (``compute.service.Caller``: user, project, admin, microversion,
policy) where Nova checks a policy; ``Caller.internal()`` is allowed everything.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import uuid as uuidlib
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy.ext.asyncio import AsyncSession

from mcloud.compute import extra_specs_resources
from mcloud.compute import models_resources as m
from mcloud.compute.models import now
from mcloud.compute.service_resources_groups import GroupsMixin
from mcloud.compute.service_resources_quotas import QuotasMixin
from mcloud.core.errors import BadRequest, Conflict, Forbidden, NotFound

MAX_INT = 0x7FFFFFFF
FLAVOR_SORT_KEYS = {
    "created_at": m.Flavor.created_at, "description": m.Flavor.description, "disabled": m.Flavor.disabled,
    "ephemeral_gb": m.Flavor.ephemeral_gb, "flavorid": m.Flavor.flavorid, "id": m.Flavor.id,
    "is_public": m.Flavor.is_public, "memory_mb": m.Flavor.memory_mb, "name": m.Flavor.name,
    "root_gb": m.Flavor.root_gb, "rxtx_factor": m.Flavor.rxtx_factor, "swap": m.Flavor.swap,
    "updated_at": m.Flavor.updated_at, "vcpu_weight": m.Flavor.vcpu_weight, "vcpus": m.Flavor.vcpus,
}

#: devstack's flavors (lib/nova create_flavors, lib/tempest m1.nano/m1.micro): (id, name, ram MB,
#: disk GB, vcpus), each with hw_rng:allowed=True
DEFAULT_FLAVORS = (
    ("42", "m1.nano", 192, 1, 1), ("84", "m1.micro", 256, 1, 1),
    ("c1", "cirros256", 256, 1, 1), ("d1", "ds512M", 512, 5, 1), ("d2", "ds1G", 1024, 10, 1),
    ("d3", "ds2G", 2048, 10, 2), ("d4", "ds4G", 4096, 20, 4),
    ("1", "m1.tiny", 512, 1, 1), ("2", "m1.small", 2048, 20, 1), ("3", "m1.medium", 4096, 40, 2),
    ("4", "m1.large", 8192, 80, 4), ("5", "m1.xlarge", 16384, 160, 8),
)


@dataclasses.dataclass
class FlavorView:
    flavor: m.Flavor
    extra_specs: dict[str, str]


@dataclasses.dataclass
class FlavorPage:
    flavors: list[FlavorView]
    limit: int


class ResourcesService(QuotasMixin, GroupsMixin):
    def __init__(self, compute: Any):
        self.compute = compute

    @property
    def config(self) -> Any:
        return self.compute.config

    # ------------------------------------------------------------------ flavors

    def _visible(self, caller: Any, query: sa.Select[Any]) -> sa.Select[Any]:
        """What a non-admin sees: public flavors and the private ones shared with its project."""
        if caller.is_admin:
            return query
        shared = sa.select(m.FlavorProject.flavor_id).where(m.FlavorProject.project_id == caller.project_id)
        return query.where(sa.or_(m.Flavor.is_public == sa.true(), m.Flavor.id.in_(shared)))

    async def _specs_of(self, session: AsyncSession, ids: list[int]) -> dict[int, dict[str, str]]:
        out: dict[int, dict[str, str]] = {i: {} for i in ids}
        if ids:
            rows = await session.execute(sa.select(m.FlavorExtraSpec).where(m.FlavorExtraSpec.flavor_id.in_(ids)))
            for spec in rows.scalars():
                out[spec.flavor_id][spec.key] = spec.value
        return out

    async def _flavor(self, session: AsyncSession, caller: Any, flavorid: str) -> m.Flavor:
        query = self._visible(caller, sa.select(m.Flavor).where(m.Flavor.flavorid == str(flavorid)))
        flavor = (await session.execute(query)).scalar()
        if flavor is None:
            raise NotFound(f"Flavor {flavorid} could not be found.")
        return flavor

    async def get_flavor(self, session: AsyncSession, caller: Any, flavorid: str) -> FlavorView:
        flavor = await self._flavor(session, caller, flavorid)
        return FlavorView(flavor, (await self._specs_of(session, [flavor.id]))[flavor.id])

    async def list_flavors(self, session: AsyncSession, caller: Any, *, is_public: bool | None = True,
                           min_ram: int | None = None, min_disk: int | None = None, name: str | None = None,
                           sort_key: str = "flavorid", sort_dir: str = "asc", limit: int | None = None,
                           marker: str | None = None) -> FlavorPage:
        """Nova's flavor list: admins choose public (default), private or all (``None``); others see
        public flavors and the private ones shared with their project, never disabled ones."""
        query = sa.select(m.Flavor)
        if caller.is_admin:
            if is_public is not None:
                query = query.where(m.Flavor.is_public == is_public)
                if is_public and caller.project_id:
                    shared = sa.select(m.FlavorProject.flavor_id).where(
                        m.FlavorProject.project_id == caller.project_id)
                    query = sa.select(m.Flavor).where(sa.or_(m.Flavor.is_public == sa.true(),
                                                             m.Flavor.id.in_(shared)))
        else:
            query = self._visible(caller, query).where(m.Flavor.disabled == sa.false())
        if min_ram is not None:
            query = query.where(m.Flavor.memory_mb >= min_ram)
        if min_disk is not None:
            query = query.where(m.Flavor.root_gb >= min_disk)
        if name is not None:
            query = query.where(m.Flavor.name == name)
        column = FLAVOR_SORT_KEYS.get(sort_key)
        if column is None or sort_dir not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort key {sort_key!r} or direction {sort_dir!r}.")
        max_limit = self.config.max_limit
        limit = max_limit if limit is None else min(limit, max_limit)
        # Nova pages over (sort key, id); flavors are few, so the page is cut from the ordered list
        order = [column.desc().nulls_last(), m.Flavor.id.desc()] if sort_dir == "desc" else \
            [column.asc().nulls_first(), m.Flavor.id.asc()]
        flavors = list((await session.execute(query.order_by(*order))).scalars())
        if marker is not None:
            index = next((i for i, f in enumerate(flavors) if f.flavorid == marker), None)
            if index is None:
                raise BadRequest(f"marker [{marker}] not found")
            flavors = flavors[index + 1:]
        flavors = flavors[:limit]
        specs = await self._specs_of(session, [f.id for f in flavors])
        return FlavorPage([FlavorView(f, specs[f.id]) for f in flavors], limit)

    async def create_flavor(self, session: AsyncSession, caller: Any, *, name: str, ram: int, vcpus: int,
                            disk: int, flavorid: str | None = None, ephemeral: int = 0, swap: int = 0,
                            rxtx_factor: float = 1.0, is_public: bool = True,
                            description: str | None = None) -> FlavorView:
        caller.authorize("os_compute_api:os-flavor-manage:create", {})
        name = name.strip()
        if not name:
            raise BadRequest("Flavor names can not be empty or all whitespace.")
        flavorid = str(flavorid) if flavorid not in (None, "") else str(uuidlib.uuid4())
        for label, value, low in (("ram", ram, 1), ("vcpus", vcpus, 1), ("disk", disk, 0),
                                  ("ephemeral", ephemeral, 0), ("swap", swap, 0)):
            if not low <= value <= MAX_INT:
                raise BadRequest(f"Invalid input received: {label} must be >= {low} and <= {MAX_INT}.")
        if not 0 < rxtx_factor <= 3.40282e38:
            raise BadRequest("Invalid input received: 'rxtx_factor' argument must be a float between 0 and "
                             "3.40282e+38")
        if (await session.execute(sa.select(m.Flavor.id).where(m.Flavor.name == name))).first():
            raise Conflict(f"Flavor with name {name} already exists.")
        if (await session.execute(sa.select(m.Flavor.id).where(m.Flavor.flavorid == flavorid))).first():
            raise Conflict(f"Flavor with ID {flavorid} already exists.")
        flavor = m.Flavor(flavorid=flavorid, name=name, memory_mb=ram, vcpus=vcpus, root_gb=disk,
                          ephemeral_gb=ephemeral, swap=swap, rxtx_factor=float(rxtx_factor), is_public=is_public,
                          description=description, disabled=False, created_at=now())
        session.add(flavor)
        await session.flush()
        return FlavorView(flavor, {})

    async def update_flavor(self, session: AsyncSession, caller: Any, flavorid: str,
                            description: str | None) -> FlavorView:
        caller.authorize("os_compute_api:os-flavor-manage:update", {})
        view = await self.get_flavor(session, caller, flavorid)
        view.flavor.description = description
        view.flavor.updated_at = now()
        return view

    async def delete_flavor(self, session: AsyncSession, caller: Any, flavorid: str) -> None:
        caller.authorize("os_compute_api:os-flavor-manage:delete", {})
        flavor = (await session.execute(sa.select(m.Flavor).where(m.Flavor.flavorid == str(flavorid)))).scalar()
        if flavor is None:
            raise NotFound(f"Flavor {flavorid} could not be found.")
        await session.execute(sa.delete(m.FlavorExtraSpec).where(m.FlavorExtraSpec.flavor_id == flavor.id))
        await session.execute(sa.delete(m.FlavorProject).where(m.FlavorProject.flavor_id == flavor.id))
        await session.delete(flavor)

    # extra specs

    def check_extra_specs(self, caller: Any, specs: dict[str, Any]) -> dict[str, str]:
        """Values as strings (numbers become text), each checked by Nova's validators from 2.86."""
        out = {}
        for key, value in specs.items():
            text = value if isinstance(value, str) else str(value)
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value}. "
                                 f"{value!r} is not of type 'string', 'number'")
            if len(text) > 255:
                raise BadRequest("Invalid input for extra_specs value. It must be at most 255 characters long.")
            if caller.at(2, 86):
                extra_specs_resources.validate(key, text)
            out[key] = text
        return out

    async def extra_specs(self, session: AsyncSession, caller: Any, flavorid: str) -> dict[str, str]:
        caller.authorize("os_compute_api:os-flavor-extra-specs:index")
        return (await self.get_flavor(session, caller, flavorid)).extra_specs

    async def extra_spec(self, session: AsyncSession, caller: Any, flavorid: str, key: str) -> str:
        caller.authorize("os_compute_api:os-flavor-extra-specs:show")
        specs = (await self.get_flavor(session, caller, flavorid)).extra_specs
        if key not in specs:
            raise NotFound(f"Flavor {flavorid} has no extra specs with key {key}.")
        return specs[key]

    async def set_extra_specs(self, session: AsyncSession, caller: Any, flavorid: str, specs: dict[str, Any],
                              rule: str = "create") -> dict[str, str]:
        caller.authorize(f"os_compute_api:os-flavor-extra-specs:{rule}", {})
        values = self.check_extra_specs(caller, specs)
        flavor = await self._flavor(session, caller, flavorid)
        existing = {s.key: s for s in (await session.execute(
            sa.select(m.FlavorExtraSpec).where(m.FlavorExtraSpec.flavor_id == flavor.id))).scalars()}
        for key, value in values.items():
            if key in existing:
                existing[key].value = value
            else:
                session.add(m.FlavorExtraSpec(flavor_id=flavor.id, key=key, value=value))
        flavor.updated_at = now()
        await session.flush()
        return values

    async def delete_extra_spec(self, session: AsyncSession, caller: Any, flavorid: str, key: str) -> None:
        caller.authorize("os_compute_api:os-flavor-extra-specs:delete", {})
        flavor = await self._flavor(session, caller, flavorid)
        result = await session.execute(sa.delete(m.FlavorExtraSpec).where(
            m.FlavorExtraSpec.flavor_id == flavor.id, m.FlavorExtraSpec.key == key))
        if not result.rowcount:
            raise NotFound(f"Flavor {flavorid} has no extra specs with key {key}.")

    # access lists

    async def flavor_access(self, session: AsyncSession, caller: Any, flavorid: str) -> list[str]:
        caller.authorize("os_compute_api:os-flavor-access")
        flavor = await self._flavor(session, caller, flavorid)
        if flavor.is_public:
            raise NotFound("Access list not available for public flavors.")
        return await self._projects_of(session, flavor)

    async def _projects_of(self, session: AsyncSession, flavor: m.Flavor) -> list[str]:
        rows = await session.execute(sa.select(m.FlavorProject.project_id).where(
            m.FlavorProject.flavor_id == flavor.id).order_by(m.FlavorProject.project_id))
        return list(rows.scalars())

    async def _verify_project(self, session: AsyncSession, project_id: str) -> None:
        """Nova asks identity whether the project exists (identity.verify_project_id)."""
        identity = self.compute.identity
        if identity is None:
            return
        try:
            await identity.get_project(session, project_id)
        except NotFound:
            raise BadRequest(f"Project ID {project_id} is not a valid project.") from None

    async def add_flavor_access(self, session: AsyncSession, caller: Any, flavorid: str,
                                project_id: str) -> list[str]:
        caller.authorize("os_compute_api:os-flavor-access:add_tenant_access", {})
        await self._verify_project(session, project_id)
        flavor = await self._flavor(session, caller, flavorid)
        if caller.at(2, 7) and flavor.is_public:
            raise Conflict("Can not add access to a public flavor.")
        if await session.get(m.FlavorProject, (flavor.id, project_id)) is not None:
            raise Conflict(f"Flavor access already exists for flavor {flavorid} and project {project_id} "
                           "combination.")
        session.add(m.FlavorProject(flavor_id=flavor.id, project_id=project_id))
        await session.flush()
        return await self._projects_of(session, flavor)

    async def remove_flavor_access(self, session: AsyncSession, caller: Any, flavorid: str,
                                   project_id: str) -> list[str]:
        caller.authorize("os_compute_api:os-flavor-access:remove_tenant_access", {})
        flavor = await self._flavor(session, caller, flavorid)
        row = await session.get(m.FlavorProject, (flavor.id, project_id))
        if row is None:
            raise NotFound(f"Flavor access not found for {flavorid} / {project_id} combination.")
        await session.delete(row)
        await session.flush()
        return await self._projects_of(session, flavor)

    # seam 3

    @staticmethod
    def flavor_snapshot(view: FlavorView) -> dict[str, Any]:
        """The copy of a flavor a server keeps (Instance.flavor)."""
        f = view.flavor
        return {"id": f.flavorid, "name": f.name, "vcpus": f.vcpus, "memory_mb": f.memory_mb, "root_gb": f.root_gb,
                "ephemeral_gb": f.ephemeral_gb, "swap": f.swap, "rxtx_factor": f.rxtx_factor,
                "is_public": f.is_public, "disabled": f.disabled, "vcpu_weight": f.vcpu_weight,
                "extra_specs": dict(view.extra_specs), "description": f.description}

    async def get_flavor_for_boot(self, session: AsyncSession, caller: Any, flavor_ref: Any) -> dict[str, Any]:
        """The flavor a server is booted (or resized) with, as the snapshot Instance.flavor keeps;
        400 "Flavor ... could not be found." for an unknown, inaccessible or disabled one."""
        flavorid = str(flavor_ref).rstrip("/").rsplit("/", 1)[-1]
        try:
            view = await self.get_flavor(session, caller, flavorid)
        except NotFound:
            raise BadRequest(f"Flavor {flavor_ref} could not be found.") from None
        if view.flavor.disabled:
            raise BadRequest(f"Flavor {flavor_ref} could not be found.")
        return self.flavor_snapshot(view)

    async def make_default_flavors(self, session: AsyncSession) -> int:
        """devstack's flavors, made once (when the cloud has no flavor at all); returns how many."""
        if (await session.execute(sa.select(m.Flavor.id).limit(1))).first():
            return 0
        for flavorid, name, ram, disk, vcpus in DEFAULT_FLAVORS:
            flavor = m.Flavor(flavorid=flavorid, name=name, memory_mb=ram, vcpus=vcpus, root_gb=disk,
                              ephemeral_gb=0, swap=0, rxtx_factor=1.0, is_public=True, disabled=False,
                              created_at=now())
            session.add(flavor)
            await session.flush()
            session.add(m.FlavorExtraSpec(flavor_id=flavor.id, key="hw_rng:allowed", value="True"))
        await session.flush()
        return len(DEFAULT_FLAVORS)

    # ------------------------------------------------------------------ keypairs

    def _keypair_target(self, caller: Any, user_id: str | None) -> str:
        return user_id or caller.user_id

    async def list_keypairs(self, session: AsyncSession, caller: Any, user_id: str | None = None,
                            limit: int | None = None, marker: str | None = None) -> list[m.KeyPair]:
        user_id = self._keypair_target(caller, user_id)
        caller.authorize("os_compute_api:os-keypairs:index", {"user_id": user_id})
        query = sa.select(m.KeyPair).where(m.KeyPair.user_id == user_id)
        if marker is not None:
            anchor = (await session.execute(query.where(m.KeyPair.name == marker))).scalar()
            if anchor is None:
                raise BadRequest(f"Marker {marker} could not be found.")
            query = query.where(m.KeyPair.id > anchor.id)
        limit = self.config.max_limit if limit is None else min(limit, self.config.max_limit)
        return list((await session.execute(query.order_by(m.KeyPair.id).limit(limit))).scalars())

    async def show_keypair(self, session: AsyncSession, caller: Any, name: str,
                           user_id: str | None = None) -> m.KeyPair:
        user_id = self._keypair_target(caller, user_id)
        caller.authorize("os_compute_api:os-keypairs:show", {"user_id": user_id})
        return await self._keypair(session, user_id, name)

    async def _keypair(self, session: AsyncSession, user_id: str, name: str) -> m.KeyPair:
        keypair = (await session.execute(sa.select(m.KeyPair).where(
            m.KeyPair.user_id == user_id, m.KeyPair.name == name))).scalar()
        if keypair is None:
            raise NotFound(f"Keypair {name} not found for user {user_id}")
        return keypair

    async def create_keypair(self, session: AsyncSession, caller: Any, name: str, *,
                             public_key: str | None = None, key_type: str = "ssh",
                             user_id: str | None = None) -> tuple[m.KeyPair, str | None]:
        """Import ``public_key``, or generate a pair (before 2.92): (keypair, private key or None)."""
        user_id = self._keypair_target(caller, user_id)
        caller.authorize("os_compute_api:os-keypairs:create", {"user_id": user_id})
        name = name.strip()
        limit = await self.limit_of(session, caller.project_id, "key_pairs")
        if limit >= 0:
            count = (await session.execute(sa.select(sa.func.count()).select_from(m.KeyPair).where(
                m.KeyPair.user_id == user_id))).scalar() or 0
            if count + 1 > limit:
                raise Forbidden("Quota exceeded, too many key pairs.")
        if (await session.execute(sa.select(m.KeyPair.id).where(
                m.KeyPair.user_id == user_id, m.KeyPair.name == name))).first():
            raise Conflict(f"Key pair '{name}' already exists.")
        private_key = None
        if public_key is None:
            private_key, public_key, fingerprint = await asyncio.to_thread(generate_keypair, key_type, user_id)
        else:
            fingerprint = fingerprint_of(public_key, key_type)
        keypair = m.KeyPair(user_id=user_id, name=name, fingerprint=fingerprint, public_key=public_key,
                            type=key_type, created_at=now())
        session.add(keypair)
        await session.flush()
        return keypair, private_key

    async def delete_keypair(self, session: AsyncSession, caller: Any, name: str,
                             user_id: str | None = None) -> None:
        user_id = self._keypair_target(caller, user_id)
        caller.authorize("os_compute_api:os-keypairs:delete", {"user_id": user_id})
        await session.delete(await self._keypair(session, user_id, name))

    async def get_keypair(self, session: AsyncSession, user_id: str, name: str) -> tuple[str, str, str]:
        """Seam 3: the key a server is booted with: (name, public key, type); 400 as Nova when the
        user has no such key."""
        keypair = (await session.execute(sa.select(m.KeyPair).where(
            m.KeyPair.user_id == user_id, m.KeyPair.name == name))).scalar()
        if keypair is None:
            raise BadRequest("Invalid key_name provided.")
        return keypair.name, keypair.public_key, keypair.type


# ---------------------------------------------------------------------- key material


def _colons(hexdigest: str) -> str:
    return ":".join(hexdigest[i:i + 2] for i in range(0, len(hexdigest), 2))


def fingerprint_of(public_key: str, key_type: str = "ssh") -> str:
    """Nova's fingerprints: MD5 of an OpenSSH key's blob, SHA-1 of an X.509 certificate."""
    if key_type == "x509":
        try:
            cert = x509.load_pem_x509_certificate(public_key.encode())
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"Keypair data is invalid: failed to generate X509 fingerprint. "
                             f"Error message: {exc}") from None
        return _colons(cert.fingerprint(hashes.SHA1()).hex())  # noqa: S303 - Nova's fingerprint
    try:
        serialization.load_ssh_public_key(public_key.strip().encode())
        blob = base64.b64decode(public_key.strip().split()[1])
    except (ValueError, IndexError, binascii.Error, UnicodeEncodeError, TypeError):
        raise BadRequest("Keypair data is invalid: failed to generate fingerprint") from None
    return _colons(hashlib.md5(blob, usedforsecurity=False).hexdigest())


def generate_keypair(key_type: str, user_id: str) -> tuple[str, str, str]:
    """A new pair as Nova makes it: (private key PEM, public key, fingerprint). ssh: RSA 2048 with an
    OpenSSH public key "ssh-rsa ... Generated-by-Nova"; x509: a self-signed certificate (as Nova's
    WinRM certificates: CN the user, clientAuth) as the public part."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    if key_type == "x509":
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id or "mcloud")])
        start = datetime.utcnow()
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(start + timedelta(days=3650))
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(key, hashes.SHA256()))
        public = cert.public_bytes(serialization.Encoding.PEM).decode()
        return private, public, fingerprint_of(public, "x509")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode() + " Generated-by-Nova"
    return private, public, fingerprint_of(public, "ssh")
