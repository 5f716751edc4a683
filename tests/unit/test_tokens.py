import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from mcloud.core.errors import Unauthorized
from mcloud.identity.tokens import KeyRepository, TokenCodec, TokenPayload, new_audit_id


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def payload(**kw) -> TokenPayload:
    base = dict(user_id="0123456789abcdef0123456789abcdef", methods=("password",), issued_at=now(),
                expires_at=now() + timedelta(hours=1), audit_ids=(new_audit_id(),))
    return TokenPayload(**{**base, **kw})


def test_round_trip_every_scope(tmp_path):
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    codec = TokenCodec(repo)
    for p in (payload(), payload(project_id="a" * 32), payload(domain_id="default"), payload(system="all"),
              payload(trust_id="b" * 32, project_id="c" * 32),
              payload(project_id="d" * 32, application_credential_id="e" * 32, methods=("application_credential",))):
        token = codec.encode(p)
        assert "=" not in token and len(token) < 300
        back = codec.decode(token)
        assert back == p.__class__(**{**p.__dict__, "issued_at": back.issued_at, "expires_at": back.expires_at})
        assert abs((back.issued_at - p.issued_at).total_seconds()) < 1e-5


def test_tampered_and_expired_tokens_are_refused(tmp_path):
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    codec = TokenCodec(repo)
    token = codec.encode(payload())
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    with pytest.raises(Unauthorized):
        codec.decode(flipped)
    with pytest.raises(Unauthorized):
        codec.decode(codec.encode(payload(expires_at=now() - timedelta(seconds=1))))
    with pytest.raises(Unauthorized):
        codec.decode("not-a-token")


def test_rotation_keeps_live_tokens_until_keys_age_out(tmp_path):
    repo = KeyRepository(tmp_path / "keys", max_active_keys=3)
    repo.setup()
    assert sorted(p.name for p in repo.path.iterdir()) == ["0", "1"]
    assert stat.S_IMODE(os.stat(repo.path / "1").st_mode) == 0o600
    codec = TokenCodec(repo)
    old = codec.encode(payload())
    repo.rotate()  # keys 0 (staged), 2 (primary), 1 (secondary)
    repo._checked = 0  # noqa: SLF001 - skip the 1 s re-read throttle
    assert codec.decode(old).user_id
    repo.rotate()  # 1 ages out
    repo._checked = 0  # noqa: SLF001
    assert sorted(int(p.name) for p in repo.path.iterdir()) == [0, 2, 3]
    with pytest.raises(Unauthorized):
        codec.decode(old)


def test_another_process_rotating_is_noticed(tmp_path):
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    codec = TokenCodec(repo)
    other = KeyRepository(tmp_path / "keys")
    other.rotate()
    fresh = TokenCodec(other).encode(payload())  # encrypted with the new primary
    repo._checked = 0  # noqa: SLF001
    assert codec.decode(fresh).user_id
