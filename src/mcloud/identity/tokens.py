"""Fernet-style tokens: a compact msgpack payload in Fernet's authenticated encryption
(AES-128-CBC + HMAC-SHA256), with Keystone's key repository layout and rotation.

A token carries who and what scope, never roles or the catalog: those are looked up when
the token is validated, so a role removed or a user disabled takes effect at once.

Key repository (a directory of files named by integers, each one Fernet key, 0600):
``0`` is the staged key, the highest number is the primary key (it encrypts), and the rest
are secondary keys (they only decrypt). Rotation promotes the staged key to primary, stages
a new key, and drops the oldest secondaries beyond ``max_active_keys``, exactly as
``keystone-manage fernet_rotate`` does, so a rotation never invalidates a live token as
long as tokens expire before ``max_active_keys - 2`` more rotations.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import secrets
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import msgpack
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from mcloud.core.errors import Unauthorized

PAYLOAD_VERSION = 1

# scope kinds
UNSCOPED, PROJECT, DOMAIN, SYSTEM, TRUST = 0, 1, 2, 3, 4

METHODS = ("password", "token", "application_credential", "totp")


class KeyRepositoryError(RuntimeError):
    pass


class KeyRepository:
    """Fernet keys on disk; reloaded when the directory changes (another process rotated)."""

    def __init__(self, path: Path, max_active_keys: int = 3):
        if max_active_keys < 1:
            raise KeyRepositoryError("max_active_keys must be at least 1")
        self.path = path
        self.max_active_keys = max_active_keys
        self._fernet: MultiFernet | None = None
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0

    def _indexes(self) -> list[int]:
        if not self.path.is_dir():
            return []
        return sorted(int(p.name) for p in self.path.iterdir() if p.name.isdigit())

    def _write_key(self, index: int) -> None:
        target = self.path / str(index)
        tmp = self.path / f".{index}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
        os.replace(tmp, target)

    def setup(self) -> bool:
        """Create the repository with a staged and a primary key if it has none. True if created."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path, 0o700)
        if self._indexes():
            return False
        self._write_key(0)
        self.rotate()
        return True

    def rotate(self) -> int:
        """Promote the staged key, stage a new one, prune old keys. Returns the new primary index."""
        indexes = self._indexes()
        if 0 not in indexes:
            self._write_key(0)
            indexes = self._indexes()
        primary = max(indexes) + 1
        os.replace(self.path / "0", self.path / str(primary))
        self._write_key(0)
        indexes = self._indexes()
        secondaries = [i for i in indexes if i not in (0, primary)]
        excess = len(indexes) - self.max_active_keys
        for index in secondaries[: max(excess, 0)]:
            (self.path / str(index)).unlink()
        self._stamp = None
        return primary

    def fernet(self) -> MultiFernet:
        now = time.monotonic()
        if self._fernet is not None and now - self._checked < 1.0:
            return self._fernet
        self._checked = now
        st = self.path.stat() if self.path.is_dir() else None
        stamp = (st.st_mtime, st.st_ino) if st else None
        if self._fernet is None or stamp != self._stamp:
            indexes = self._indexes()
            if not indexes:
                raise KeyRepositoryError(f"no keys in {self.path}: run `mcloud bootstrap`")
            # primary first: MultiFernet encrypts with the first key
            keys = [Fernet((self.path / str(i)).read_bytes().strip()) for i in sorted(indexes, reverse=True)]
            self._fernet = MultiFernet(keys)
            self._stamp = stamp
        return self._fernet


def _pack_id(value: str | None) -> bytes | str | None:
    if value is None:
        return None
    if len(value) == 32:
        try:
            return uuid.UUID(hex=value).bytes
        except ValueError:
            pass
    return value


def _unpack_id(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return uuid.UUID(bytes=value).hex
    return value


def new_audit_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def _pack_audit(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _unpack_audit(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).decode().rstrip("=")


def _micros(dt: datetime) -> int:
    # naive datetimes here are UTC: never let timestamp() read them as local time
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1_000_000)


def _from_micros(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC).replace(tzinfo=None)


@dataclasses.dataclass(frozen=True)
class TokenPayload:
    """What a token says. Datetimes are naive UTC."""

    user_id: str
    methods: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    audit_ids: tuple[str, ...]
    project_id: str | None = None
    domain_id: str | None = None
    system: str | None = None
    trust_id: str | None = None
    application_credential_id: str | None = None

    @property
    def scope_key(self) -> tuple[str | None, ...]:
        return (
            self.user_id,
            self.project_id,
            self.domain_id,
            self.system,
            self.trust_id,
            self.application_credential_id,
        )


class TokenCodec:
    def __init__(self, keys: KeyRepository):
        self.keys = keys

    def encode(self, p: TokenPayload) -> str:
        methods = sum(1 << METHODS.index(m) for m in p.methods)
        if p.trust_id:
            kind, scope = TRUST, _pack_id(p.trust_id)
        elif p.project_id:
            kind, scope = PROJECT, _pack_id(p.project_id)
        elif p.domain_id:
            kind, scope = DOMAIN, _pack_id(p.domain_id)
        elif p.system:
            kind, scope = SYSTEM, p.system
        else:
            kind, scope = UNSCOPED, None
        data = [
            PAYLOAD_VERSION,
            _pack_id(p.user_id),
            methods,
            kind,
            scope,
            _micros(p.issued_at),
            _micros(p.expires_at),
            [_pack_audit(a) for a in p.audit_ids],
            _pack_id(p.application_credential_id),
            _pack_id(p.project_id) if kind == TRUST else None,
        ]
        token = self.keys.fernet().encrypt(msgpack.packb(data, use_bin_type=True))
        return token.decode().rstrip("=")

    def decode(self, token: str) -> TokenPayload:
        """The payload of an authentic, unexpired token; 401 otherwise."""
        try:
            raw = self.keys.fernet().decrypt((token + "=" * (-len(token) % 4)).encode())
            data = msgpack.unpackb(raw, raw=False)
            version, user, methods, kind, scope, issued, expires, audits, app_cred, trust_project = data
        except (InvalidToken, ValueError, TypeError, msgpack.UnpackException, UnicodeError) as exc:
            raise Unauthorized("The request you have made requires authentication.") from exc
        if version != PAYLOAD_VERSION:
            raise Unauthorized("The request you have made requires authentication.")
        expires_at = _from_micros(expires)
        if expires_at <= datetime.now(UTC).replace(tzinfo=None):
            raise Unauthorized("The request you have made requires authentication.")
        return TokenPayload(
            user_id=_unpack_id(user) or "",
            methods=tuple(m for i, m in enumerate(METHODS) if methods & (1 << i)),
            issued_at=_from_micros(issued),
            expires_at=expires_at,
            audit_ids=tuple(_unpack_audit(a) for a in audits),
            project_id=_unpack_id(scope) if kind == PROJECT else _unpack_id(trust_project),
            domain_id=_unpack_id(scope) if kind == DOMAIN else None,
            system=scope if kind == SYSTEM else None,
            trust_id=_unpack_id(scope) if kind == TRUST else None,
            application_credential_id=_unpack_id(app_cred),
        )
