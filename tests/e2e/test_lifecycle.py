"""`mcloud up` itself: what it prints and serves, the files it writes, its defaults, and what survives
stopping it and running it again on the same data directory."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest
import yaml

from mcloud.app import Cloud
from tests.e2e.conftest import FAST_ENV, Client, connect, unique
from tests.harness import LiveCloud, free_port

pytestmark = pytest.mark.e2e


def _stop(cloud: LiveCloud) -> None:
    """Stop with SIGTERM and check it was a graceful shutdown, not a crash."""
    code = cloud.stop()
    assert code in (0, -signal.SIGTERM), f"mcloud up exited {code} on SIGTERM"
    log = cloud.log.read_text()
    assert "Finished server process" in log[log.rfind("Started server process"):], log[-2000:]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_up_with_defaults_prints_ready_serves_root_and_writes_private_clouds_yaml(tmp_path: Path) -> None:
    """No test speed-ups here: the default bcrypt cost (12, as Keystone) is what the admin gets."""
    data_dir, port = tmp_path / "data", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MCLOUD_", "OS_"))}
    proc = subprocess.Popen([sys.executable, "-m", "mcloud", "up", "--data-dir", str(data_dir), "--port", str(port),
                             "--admin-password", "default-admin-pw"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "mCloud ready" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(60), f"no 'mCloud ready' line; stdout was {lines!r}, exit {proc.poll()}"
        base = f"http://127.0.0.1:{port}"
        line = next(x for x in lines if "mCloud ready" in x)
        assert line.startswith(f"mCloud ready at {base}"), line
        assert str(data_dir / "clouds.yaml") in line

        doc = httpx.get(base + "/", headers={"Accept": "application/json"})
        assert doc.status_code == 200 and doc.headers["content-type"].startswith("application/json")
        services = doc.json()["services"]
        assert {"type": "identity", "url": base + "/identity"}.items() <= next(
            s for s in services if s["type"] == "identity").items()
        assert httpx.get(base + "/").json() == doc.json()  # JSON is the default

        page = httpx.get(base + "/", headers={"Accept": "text/html"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "identity" in page.text and base + "/identity" in page.text

        clouds_yaml = data_dir / "clouds.yaml"
        assert _mode(clouds_yaml) == 0o600
        for secret in ("admin-password", "demo-password"):
            assert _mode(data_dir / secret) == 0o600, secret
        clouds = yaml.safe_load(clouds_yaml.read_text())["clouds"]
        assert clouds["mcloud"]["auth"]["auth_url"] == base + "/identity"
        assert (clouds["mcloud"]["auth"]["username"], clouds["mcloud"]["auth"]["project_name"]) == ("admin", "admin")
        assert clouds["mcloud"]["auth"]["password"] == "default-admin-pw"
        assert (clouds["mcloud-demo"]["auth"]["username"], clouds["mcloud-demo"]["auth"]["project_name"]) == (
            "demo", "demo")

        # The stored admin password is a bcrypt hash at the default cost, and it authenticates.
        db = sqlite3.connect(f"file:{data_dir / 'mcloud.db'}?mode=ro", uri=True)
        try:
            (hashed,) = db.execute("SELECT password_hash FROM identity_user WHERE name = 'admin'").fetchone()
        finally:
            db.close()
        assert hashed.startswith("$2b$12$"), hashed[:7]
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": "default-admin-pw"}}}}}
        assert httpx.post(base + "/identity/v3/auth/tokens", json=body).status_code == 201
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    # a clean shutdown: connections drained, mCloud's own cleanup run, exit status 0
    assert code == 0, f"mcloud up exited {code} on SIGTERM"


# --- restart and idempotency ----------------------------------------------------------------------


def snapshot(conn: openstack.connection.Connection) -> dict[str, list[Any]]:
    """Everything identity holds, as sorted lists of comparable tuples."""
    ident = conn.identity
    roles = {r.id: r.name for r in ident.roles()}
    groups = list(ident.groups())

    def who(a) -> str:
        return ("user:" + a.user["id"]) if a.user else ("group:" + a.group["id"])

    def where(a) -> str:
        kind, target = next(iter(a.scope.items()))
        return f"{kind}:{'all' if kind == 'system' else target['id']}"

    return {
        "domains": sorted((d.id, d.name, d.is_enabled) for d in ident.domains()),
        "projects": sorted((p.id, p.domain_id, p.name, tuple(sorted(p.tags or []))) for p in ident.projects()),
        "users": sorted((u.id, u.domain_id, u.name, u.email) for u in ident.users()),
        "groups": sorted((g.id, g.domain_id, g.name) for g in groups),
        "members": sorted((g.id, u.id) for g in groups for u in ident.group_users(g)),
        "roles": sorted(roles.items()),
        "implied": sorted((i["prior_role"]["id"], j["id"])
                          for i in ident.get("/role_inferences").json()["role_inferences"] for j in i["implies"]),
        "assignments": sorted((roles[a.role["id"]], who(a), where(a)) for a in ident.role_assignments()),
        "services": sorted((s.id, s.type, s.name) for s in ident.services()),
        "endpoints": sorted((e.id, e.service_id, e.interface, e.url, e.region_id) for e in ident.endpoints()),
        "regions": sorted(r.id for r in ident.regions()),
        "app_creds": sorted((c.id, c.name) for c in ident.application_credentials(user=conn.current_user_id)),
    }


@dataclass
class Restarted:
    cloud: LiveCloud
    cli: Client
    before: dict[str, list[Any]]
    clouds_yaml_before: str
    token: str
    revoked: str
    project: Any
    user: Any
    group: Any
    role: Any
    app_cred_id: str
    app_cred_secret: str


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory, empty_config: Path) -> Iterator[Restarted]:
    """A cloud with data in it, a token issued, then stopped and `mcloud up` again on the same data dir."""
    data_dir = tmp_path_factory.mktemp("restart")
    cloud = LiveCloud(data_dir, free_port(), admin_password="restart-admin", env=FAST_ENV)
    cloud.start()
    try:
        cli = Client(cloud, empty_config)
        conn = connect(data_dir / "clouds.yaml")
        ident = conn.identity
        domain = ident.create_domain(name=unique("keep-dom"), description="kept")
        project = ident.create_project(name=unique("keep-proj"), domain_id=domain.id, tags=["kept"])
        user = ident.create_user(name=unique("keep-user"), domain_id=domain.id, password="kept-pw",
                                 email="kept@example.org")
        group = ident.create_group(name=unique("keep-group"), domain_id=domain.id)
        ident.add_user_to_group(user, group)
        role = ident.create_role(name=unique("keep-role"))
        ident.assign_project_role_to_group(project, group, role)
        ident.assign_project_role_to_user(project, user, ident.find_role("member"))
        cred = ident.create_application_credential(conn.current_user_id, name=unique("keep-cred"))
        before = snapshot(conn)
        conn.close()
        token = cli.json("token", "issue")["id"]
        revoked = cli.api_token()
        r = httpx.delete(cli.auth_url + "/v3/auth/tokens",
                         headers={"X-Auth-Token": token, "X-Subject-Token": revoked})
        assert r.status_code == 204, r.text
        clouds_yaml_before = (data_dir / "clouds.yaml").read_text()

        _stop(cloud)
        cloud.start()
        yield Restarted(cloud, cli, before, clouds_yaml_before, token, revoked, project, user, group, role,
                        cred.id, cred.secret)
    finally:
        cloud.stop()


def test_restart_keeps_all_data(restarted: Restarted) -> None:
    r = restarted
    conn = connect(r.cloud.data_dir / "clouds.yaml")
    try:
        after = snapshot(conn)
    finally:
        conn.close()
    for kind in r.before:
        assert after[kind] == r.before[kind], kind
    assert (r.cloud.data_dir / "clouds.yaml").read_text() == r.clouds_yaml_before

    # The CLI sees the grants by name; the user's password and the application credential still work.
    rows = {(x["Role"], x["User"], x["Group"]) for x in r.cli.json(
        "role", "assignment", "list", "--names", "--project", r.project.id)}
    domain_name = next(d[1] for d in r.before["domains"] if d[0] == r.project.domain_id)
    assert rows == {(r.role.name, "", f"{r.group.name}@{domain_name}"),
                    ("member", f"{r.user.name}@{domain_name}", "")}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "id": r.user.id, "password": "kept-pw"}}}, "scope": {"project": {"id": r.project.id}}}}
    assert httpx.post(r.cli.auth_url + "/v3/auth/tokens", json=body).status_code == 201
    token = r.cli.bare_json("--os-auth-type", "v3applicationcredential",
                            "--os-application-credential-id", r.app_cred_id,
                            "--os-application-credential-secret", r.app_cred_secret, "token", "issue")
    assert token["user_id"] and token["project_id"]


def test_token_issued_before_restart_is_valid_after(restarted: Restarted) -> None:
    result = restarted.cli.bare("--os-auth-type", "token", "--os-token", restarted.token,
                                "--os-project-name", "admin", "--os-project-domain-id", "default",
                                "project", "list", "-f", "json", check=True)
    assert restarted.project.name in result.stdout


def test_token_revoked_before_restart_stays_revoked(restarted: Restarted) -> None:
    r = httpx.get(restarted.cli.auth_url + "/v3/auth/tokens",
                  headers={"X-Auth-Token": restarted.token, "X-Subject-Token": restarted.revoked})
    assert r.status_code == 404, r.text


def _assert_bootstrap_not_duplicated(snap: dict[str, list[Any]], url: str) -> None:
    def count(kind: str, idx: int) -> collections.Counter:
        return collections.Counter(row[idx] for row in snap[kind])

    assert [d for d in snap["domains"] if d[0] == "default"] == [("default", "Default", True)]
    default_projects = collections.Counter(p[2] for p in snap["projects"] if p[1] == "default")
    assert {n: default_projects[n] for n in ("admin", "demo", "service")} == {"admin": 1, "demo": 1, "service": 1}
    default_users = collections.Counter(u[2] for u in snap["users"] if u[1] == "default")
    assert {n: default_users[n] for n in ("admin", "demo")} == {"admin": 1, "demo": 1}
    role_names = count("roles", 1)
    assert all(role_names[n] == 1 for n in ("admin", "manager", "member", "reader", "service")), role_names
    assert len(snap["implied"]) == len(set(snap["implied"])) == 3
    assert len(snap["assignments"]) == len(set(snap["assignments"]))
    admin_id = next(u[0] for u in snap["users"] if u[1:3] == ("default", "admin"))
    demo_id = next(u[0] for u in snap["users"] if u[1:3] == ("default", "demo"))
    projects = {p[2]: p[0] for p in snap["projects"] if p[1] == "default"}
    assert sorted(a for a in snap["assignments"] if a[1] == f"user:{admin_id}") == sorted([
        ("admin", f"user:{admin_id}", f"project:{projects['admin']}"),
        ("admin", f"user:{admin_id}", "domain:default"),
        ("admin", f"user:{admin_id}", "system:all")])
    assert [a for a in snap["assignments"] if a[1] == f"user:{demo_id}"] == [
        ("member", f"user:{demo_id}", f"project:{projects['demo']}")]
    specs = Cloud.service_specs()  # a catalog alias (volumev3) is a service of its own with the same URLs
    assert sorted(s[1:] for s in snap["services"]) == sorted(
        (type_, spec.name) for spec in specs for type_ in (spec.type, *spec.aliases))
    assert sorted(e[2:] for e in snap["endpoints"]) == sorted(
        (interface, url + spec.path + spec.endpoint_suffix, "RegionOne")
        for spec in specs for _ in (spec.type, *spec.aliases) for interface in ("admin", "internal", "public"))
    assert snap["regions"] == ["RegionOne"]


def test_up_twice_on_same_data_dir_is_idempotent(restarted: Restarted) -> None:
    """The second `mcloud up` made no second admin, demo, role, implied role, grant, service or endpoint."""
    conn = connect(restarted.cloud.data_dir / "clouds.yaml")
    try:
        after = snapshot(conn)
    finally:
        conn.close()
    _assert_bootstrap_not_duplicated(after, restarted.cloud.url)
    assert after == restarted.before
    # And the catalog the CLI gets still lists every service once, with three endpoints each.
    catalog = restarted.cli.json("catalog", "list")
    assert sorted((s["Type"], len(s["Endpoints"])) for s in catalog) == sorted(
        (type_, 3) for spec in Cloud.service_specs() for type_ in (spec.type, *spec.aliases))


def test_up_again_on_another_port_repoints_endpoints_without_duplicates(restarted: Restarted) -> None:
    """Runs last in this module: moves the restarted cloud to a new port."""
    cloud = restarted.cloud
    _stop(cloud)
    cloud.port = free_port()
    cloud.url = f"http://127.0.0.1:{cloud.port}"
    cloud.start()
    clouds = yaml.safe_load((cloud.data_dir / "clouds.yaml").read_text())["clouds"]
    assert clouds["mcloud"]["auth"]["auth_url"] == cloud.url + "/identity"
    conn = connect(cloud.data_dir / "clouds.yaml")
    try:
        after = snapshot(conn)
    finally:
        conn.close()
    _assert_bootstrap_not_duplicated(after, cloud.url)
    same = {k for k in after if k != "endpoints"}
    assert {k: after[k] for k in same} == {k: restarted.before[k] for k in same}
    # The endpoints kept their ids; only their URL moved.
    assert sorted(e[:3] for e in after["endpoints"]) == sorted(e[:3] for e in restarted.before["endpoints"])
    # A token from the old port's cloud is still good: the keys are the data dir's, not the port's.
    r = httpx.get(cloud.url + "/identity/v3/auth/tokens",
                  headers={"X-Auth-Token": restarted.token, "X-Subject-Token": restarted.token})
    assert r.status_code == 200, r.text


def test_unauthenticated_request_is_a_keystone_401(live_cloud: LiveCloud) -> None:
    """Keystone answers every 401 with `WWW-Authenticate: Keystone uri="<identity URL>"` (RFC 7235 requires
    the header on a 401)."""
    identity = live_cloud.url + "/identity"
    no_token = httpx.get(identity + "/v3/projects")
    bad_password = httpx.post(identity + "/v3/auth/tokens", json={"auth": {"identity": {
        "methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"},
                                                       "password": "wrong"}}}}})
    for r in (no_token, bad_password):
        assert r.status_code == 401 and r.json()["error"]["code"] == 401
        assert r.headers.get("www-authenticate") == f'Keystone uri="{identity}"', dict(r.headers)
