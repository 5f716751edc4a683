"""Identity through the real `openstack` CLI against a live `mcloud up`: what a user types."""

from __future__ import annotations

import httpx
import openstack
import pytest

from tests.e2e.conftest import Client, unique

pytestmark = pytest.mark.e2e


def assignment_rows(listed: list[dict]) -> set[tuple[str, str, str, str, str, str]]:
    """`role assignment list --names -f json` rows as (role, user, group, project, domain, system)."""
    return {(r["Role"], r["User"], r["Group"], r["Project"], r["Domain"], r["System"]) for r in listed}


def failed(result, *fragments: str) -> None:
    assert result.returncode != 0, f"expected failure, got success: {result.stdout}"
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# --- tokens -------------------------------------------------------------------------------------


def test_token_issue_and_revoke(cli: Client) -> None:
    token = cli.json("token", "issue")
    assert token["id"] and token["expires"] and token["user_id"]
    admin_project = cli.json("project", "show", "admin")
    assert token["project_id"] == admin_project["id"]

    def with_token(*args: str):
        return cli.bare("--os-auth-type", "token", "--os-token", token["id"], "--os-project-name", "admin",
                        "--os-project-domain-id", "default", *args)

    listed = with_token("project", "list", "-f", "json")
    assert listed.returncode == 0, listed.stderr
    assert "admin" in listed.stdout

    cli.run("token", "revoke", token["id"])
    failed(with_token("project", "list", "-f", "json"))
    # A revoked token is gone: revoking it again is a 404, as in Keystone.
    failed(cli.run("token", "revoke", token["id"], check=False), "404")


# --- CRUD ---------------------------------------------------------------------------------------


def test_domain_crud(cli: Client) -> None:
    name = unique("dom")
    created = cli.json("domain", "create", name, "--description", "first")
    assert created["name"] == name and created["enabled"] is True and created["description"] == "first"
    assert name in {d["Name"] for d in cli.json("domain", "list")}

    cli.run("domain", "set", "--description", "second", name)
    shown = cli.json("domain", "show", name)
    assert shown["id"] == created["id"] and shown["description"] == "second" and shown["enabled"] is True

    # Keystone refuses to delete an enabled domain.
    failed(cli.run("domain", "delete", name, check=False), "disable")
    cli.run("domain", "set", "--disable", name)
    cli.run("domain", "delete", name)
    failed(cli.run("domain", "show", created["id"], check=False))


def test_project_crud(cli: Client) -> None:
    name = unique("proj")
    created = cli.json("project", "create", name, "--domain", "default", "--description", "first",
                       "--tag", "blue")
    assert created["name"] == name and created["domain_id"] == "default" and created["enabled"] is True
    assert created["description"] == "first" and created["tags"] == ["blue"]
    assert name in {p["Name"] for p in cli.json("project", "list")}

    new = name + "-renamed"
    cli.run("project", "set", "--name", new, "--description", "second", "--disable", name)
    shown = cli.json("project", "show", created["id"])
    assert (shown["name"], shown["description"], shown["enabled"]) == (new, "second", False)

    cli.run("project", "delete", new)
    failed(cli.run("project", "show", created["id"], check=False))


def test_user_crud(cli: Client) -> None:
    name = unique("user")
    created = cli.json("user", "create", name, "--domain", "default", "--password", "pw-one",
                       "--email", "one@example.org", "--project", "demo", "--description", "first")
    demo = cli.json("project", "show", "demo")
    assert created["name"] == name and created["email"] == "one@example.org"
    assert created["default_project_id"] == demo["id"] and created["enabled"] is True
    assert "password" not in created
    assert name in {u["Name"] for u in cli.json("user", "list", "--domain", "default")}

    cli.run("user", "set", "--email", "two@example.org", "--description", "second", "--password", "pw-two", name)
    shown = cli.json("user", "show", created["id"])
    assert (shown["name"], shown["email"], shown["description"]) == (name, "two@example.org", "second")
    # The password `user set` gave is the one that now authenticates (unscoped: the user has no roles).
    issued = cli.bare_json(*cli.password_args(name, "pw-two"), "token", "issue")
    assert issued["user_id"] == created["id"]

    cli.run("user", "delete", name)
    failed(cli.run("user", "show", created["id"], check=False))


def test_group_crud_and_membership(cli: Client) -> None:
    user = cli.json("user", "create", unique("member"), "--domain", "default", "--password", "pw")
    name = unique("group")
    created = cli.json("group", "create", name, "--domain", "default", "--description", "first")
    assert created["name"] == name and created["domain_id"] == "default" and created["description"] == "first"
    assert name in {g["Name"] for g in cli.json("group", "list", "--domain", "default")}

    new = name + "-renamed"
    cli.run("group", "set", "--name", new, "--description", "second", name)
    shown = cli.json("group", "show", created["id"])
    assert (shown["name"], shown["description"]) == (new, "second")

    cli.run("group", "add", "user", new, user["id"])
    contains = cli.run("group", "contains", "user", new, user["id"])
    assert f"{user['id']} in group {new}" in contains.stdout + contains.stderr
    assert [g["Name"] for g in cli.json("group", "list", "--user", user["id"])] == [new]

    cli.run("group", "remove", "user", new, user["id"])
    contains = cli.run("group", "contains", "user", new, user["id"])  # OSC says so on stderr, exit 0
    assert f"{user['id']} not in group {new}" in contains.stdout + contains.stderr

    cli.run("group", "delete", new)
    failed(cli.run("group", "show", created["id"], check=False))
    cli.run("user", "delete", user["id"])


def test_role_crud(cli: Client) -> None:
    name = unique("role")
    created = cli.json("role", "create", name, "--description", "first")
    assert created["name"] == name and created["description"] == "first" and created["domain_id"] is None
    names = {r["Name"] for r in cli.json("role", "list")}
    assert {name, "admin", "manager", "member", "reader", "service"} <= names

    new = name + "-renamed"
    cli.run("role", "set", "--name", new, "--description", "second", name)
    shown = cli.json("role", "show", created["id"])
    assert (shown["name"], shown["description"]) == (new, "second")

    cli.run("role", "delete", new)
    failed(cli.run("role", "show", created["id"], check=False))


# --- role assignments -----------------------------------------------------------------------------


def test_role_add_remove_and_effective_assignments(cli: Client, sdk: openstack.connection.Connection) -> None:
    # The objects are made with openstacksdk (fast); the grants and listings are the CLI under test.
    project = sdk.identity.create_project(name=unique("ra-proj"), domain_id="default")
    user = sdk.identity.create_user(name=unique("ra-user"), domain_id="default", password="pw")
    group = sdk.identity.create_group(name=unique("ra-group"), domain_id="default")
    sdk.identity.add_user_to_group(user, group)
    role = sdk.identity.create_role(name=unique("ra-role"))
    u, p, g = f"{user.name}@Default", f"{project.name}@Default", f"{group.name}@Default"

    cli.run("role", "add", "--user", user.id, "--project", project.id, "member")
    cli.run("role", "add", "--group", group.id, "--project", project.id, role.name)
    cli.run("role", "add", "--user", user.id, "--domain", "default", "reader")
    cli.run("role", "add", "--user", user.id, "--system", "all", "reader")

    effective = assignment_rows(cli.json("role", "assignment", "list", "--effective", "--names", "--user", user.id))
    assert effective == {
        ("member", u, "", p, "", ""),
        ("reader", u, "", p, "", ""),        # member implies reader
        (role.name, u, "", p, "", ""),       # through the group
        ("reader", u, "", "", "Default", ""),
        ("reader", u, "", "", "", "all"),
    }

    # Not effective: the project's own grants, the group's row as a group row.
    direct = assignment_rows(cli.json("role", "assignment", "list", "--names", "--project", project.id))
    assert direct == {("member", u, "", p, "", ""), (role.name, "", g, p, "", "")}

    both = assignment_rows(cli.json("role", "assignment", "list", "--effective", "--names",
                                    "--user", user.id, "--project", project.id))
    assert both == {("member", u, "", p, "", ""), ("reader", u, "", p, "", ""), (role.name, u, "", p, "", "")}

    cli.run("role", "remove", "--user", user.id, "--system", "all", "reader")
    cli.run("role", "remove", "--user", user.id, "--domain", "default", "reader")
    cli.run("role", "remove", "--group", group.id, "--project", project.id, role.name)
    effective = assignment_rows(cli.json("role", "assignment", "list", "--effective", "--names", "--user", user.id))
    assert effective == {("member", u, "", p, "", ""), ("reader", u, "", p, "", "")}

    sdk.identity.delete_user(user)
    sdk.identity.delete_group(group)
    sdk.identity.delete_project(project)
    sdk.identity.delete_role(role)


def test_inherited_group_domain_grant_reaches_projects(cli: Client, sdk: openstack.connection.Connection) -> None:
    domain = sdk.identity.create_domain(name=unique("inh-dom"))
    project = sdk.identity.create_project(name=unique("inh-proj"), domain_id=domain.id)
    user = sdk.identity.create_user(name=unique("inh-user"), domain_id=domain.id, password="pw")
    group = sdk.identity.create_group(name=unique("inh-group"), domain_id=domain.id)
    sdk.identity.add_user_to_group(user, group)

    cli.run("role", "add", "--group", group.id, "--domain", domain.id, "--inherited", "reader")
    rows = assignment_rows(cli.json("role", "assignment", "list", "--effective", "--names",
                                    "--user", user.id, "--project", project.id))
    assert rows == {("reader", f"{user.name}@{domain.name}", "", f"{project.name}@{domain.name}", "", "")}

    sdk.identity.update_domain(domain, is_enabled=False)
    sdk.identity.delete_domain(domain)


# --- application credentials --------------------------------------------------------------------


def test_application_credential_authenticates_cli_and_sdk(cli: Client) -> None:
    name = unique("appcred")
    created = cli.json("application", "credential", "create", name, "--description", "e2e")
    assert created["Name"] == name and created["Secret"]
    admin_project = cli.json("project", "show", "admin")
    assert created["Project ID"] == admin_project["id"]
    assert "admin" in {r["name"] for r in created["Roles"]}

    def auth(secret: str) -> list[str]:
        return ["--os-auth-type", "v3applicationcredential", "--os-application-credential-id", created["ID"],
                "--os-application-credential-secret", secret]

    token = cli.bare_json(*auth(created["Secret"]), "token", "issue")
    assert token["project_id"] == admin_project["id"]
    failed(cli.bare(*auth("not-the-secret"), "token", "issue"))

    conn = openstack.connect(auth_type="v3applicationcredential", auth_url=cli.auth_url,
                             application_credential_id=created["ID"],
                             application_credential_secret=created["Secret"],
                             identity_api_version="3", load_yaml_config=False, load_envvars=False)
    try:
        assert conn.authorize()
        assert conn.current_project_id == admin_project["id"]
        access = conn.session.auth.get_access(conn.session)
        assert access.application_credential["id"] == created["ID"]
        assert "admin" in {p.name for p in conn.identity.projects()}
    finally:
        conn.close()

    cli.run("application", "credential", "delete", name)
    failed(cli.bare(*auth(created["Secret"]), "token", "issue"))


# --- scopes ---------------------------------------------------------------------------------------


def test_system_scoped_token(cli: Client) -> None:
    token = cli.bare_json(*cli.password_args("admin", cli.password("mcloud")), "--os-system-scope", "all",
                          "token", "issue")
    assert token["system"] == "all"
    assert "project_id" not in token and "domain_id" not in token
    # demo has no role on the system: Keystone refuses to scope its token there (401).
    failed(cli.bare(*cli.password_args("demo", cli.password("mcloud-demo")), "--os-system-scope", "all",
                    "token", "issue"))


def test_domain_scoped_token(cli: Client) -> None:
    token = cli.bare_json(*cli.password_args("admin", cli.password("mcloud")), "--os-domain-id", "default",
                          "token", "issue")
    assert token["domain_id"] == "default"
    assert "project_id" not in token and "system" not in token


# --- catalog --------------------------------------------------------------------------------------


def test_catalog_list_and_show(cli: Client) -> None:
    url = cli.cloud.url + "/identity"
    catalog = cli.json("catalog", "list")
    identity = [s for s in catalog if s["Type"] == "identity"]
    assert len(identity) == 1 and identity[0]["Name"] == "keystone"
    assert sorted(e["interface"] for e in identity[0]["Endpoints"]) == ["admin", "internal", "public"]
    assert {(e["url"], e["region"]) for e in identity[0]["Endpoints"]} == {(url, "RegionOne")}

    shown = cli.json("catalog", "show", "identity")
    assert shown["type"] == "identity" and shown["name"] == "keystone"
    assert {(e["interface"], e["url"]) for e in shown["endpoints"]} == {
        ("admin", url), ("internal", url), ("public", url)}


# --- password change ------------------------------------------------------------------------------


def test_demo_changes_own_password(cli: Client) -> None:
    old, new = cli.password("mcloud-demo"), "a-new-demo-password"
    before = cli.json("token", "issue", cloud="mcloud-demo")
    demo_auth = ["--os-username", "demo", "--os-user-domain-id", "default",
                 "--os-project-name", "demo", "--os-project-domain-id", "default"]
    cli.run("user", "password", "set", "--password", new, "--original-password", old, cloud="mcloud-demo")
    try:
        failed(cli.bare(*demo_auth, "--os-password", old, "token", "issue"), "401")
        after = cli.bare_json(*demo_auth, "--os-password", new, "token", "issue")
        assert after["user_id"] == before["user_id"] and after["project_id"] == before["project_id"]
        # Keystone revokes the user's tokens when the password changes.
        r = httpx.get(cli.auth_url + "/v3/auth/tokens",
                      headers={"X-Auth-Token": cli.api_token(), "X-Subject-Token": before["id"]})
        assert r.status_code == 404, r.text
    finally:
        # Put it back: clouds.yaml (and the other tests) use the original.
        cli.bare(*demo_auth, "--os-password", new, "user", "password", "set", "--password", old,
                 "--original-password", new, check=True)
    cli.json("token", "issue", cloud="mcloud-demo")
