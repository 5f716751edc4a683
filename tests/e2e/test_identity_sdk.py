"""Identity through openstacksdk against a live `mcloud up`, configured by the cloud's clouds.yaml."""

from __future__ import annotations

import openstack
import pytest

from tests.e2e.conftest import unique
from tests.harness import LiveCloud

pytestmark = pytest.mark.e2e


def test_sdk_reads_the_clouds_yaml_and_authorizes(live_cloud: LiveCloud, sdk: openstack.connection.Connection) -> None:
    token = sdk.authorize()
    assert isinstance(token, str) and token
    assert sdk.config.config["auth"]["username"] == "admin"
    admin = sdk.identity.find_project("admin", domain_id="default")
    assert sdk.current_project_id == admin.id
    endpoint = sdk.session.get_endpoint(service_type="identity", interface="public")
    assert endpoint.rstrip("/") in (live_cloud.url + "/identity", live_cloud.url + "/identity/v3")


def test_sdk_projects(sdk: openstack.connection.Connection) -> None:
    names = {p.name for p in sdk.identity.projects()}
    assert {"admin", "demo", "service"} <= names
    assert {p.name for p in sdk.identity.projects(domain_id="default", name="demo")} == {"demo"}


def test_sdk_user_create_update_delete(sdk: openstack.connection.Connection) -> None:
    demo = sdk.identity.find_project("demo", domain_id="default")
    name = unique("sdk-user")
    user = sdk.identity.create_user(name=name, domain_id="default", password="sdk-pw", email="a@example.org",
                                    default_project_id=demo.id)
    assert user.id and user.name == name and user.is_enabled is True
    assert sdk.identity.get_user(user.id).email == "a@example.org"
    assert user.id in {u.id for u in sdk.identity.users(domain_id="default")}

    sdk.identity.update_user(user, email="b@example.org", description="updated", is_enabled=False)
    got = sdk.identity.get_user(user.id)
    assert (got.email, got.description, got.is_enabled, got.default_project_id) == (
        "b@example.org", "updated", False, demo.id)

    sdk.identity.delete_user(user)
    assert sdk.identity.find_user(name, domain_id="default") is None
    with pytest.raises(openstack.exceptions.NotFoundException):
        sdk.identity.get_user(user.id)


def test_sdk_role_assignments(sdk: openstack.connection.Connection) -> None:
    admin_user = sdk.identity.find_user("admin", domain_id="default")
    demo_user = sdk.identity.find_user("demo", domain_id="default")
    admin_project = sdk.identity.find_project("admin", domain_id="default")
    demo_project = sdk.identity.find_project("demo", domain_id="default")
    roles = {r.id: r.name for r in sdk.identity.roles()}

    def scope_of(a) -> tuple[str, str]:
        kind, target = next(iter(a.scope.items()))
        return kind, "all" if kind == "system" else target["id"]

    admin = {(roles[a.role["id"]], *scope_of(a)) for a in sdk.identity.role_assignments(user_id=admin_user.id)}
    assert admin == {("admin", "project", admin_project.id), ("admin", "domain", "default"),
                     ("admin", "system", "all")}

    on_demo = list(sdk.identity.role_assignments(scope_project_id=demo_project.id))
    assert {(a.user["id"], roles[a.role["id"]]) for a in on_demo} >= {(demo_user.id, "member")}

    # Effective, with names: member implies reader.
    effective = list(sdk.identity.role_assignments(user_id=demo_user.id, scope_project_id=demo_project.id,
                                                   effective=True, include_names=True))
    assert {a.role["name"] for a in effective} == {"member", "reader"}
    assert {a.user["name"] for a in effective} == {"demo"}
    assert {a.scope["project"]["name"] for a in effective} == {"demo"}

    # The cloud layer's view of the same thing.
    listed = sdk.list_role_assignments(filters={"user": demo_user.id, "project": demo_project.id})
    assert {roles[a.role["id"]] for a in listed} == {"member"}


def test_sdk_grant_and_revoke_through_group(sdk: openstack.connection.Connection) -> None:
    project = sdk.identity.create_project(name=unique("sdk-proj"), domain_id="default")
    user = sdk.identity.create_user(name=unique("sdk-u"), domain_id="default", password="pw")
    group = sdk.identity.create_group(name=unique("sdk-g"), domain_id="default")
    member = sdk.identity.find_role("member")
    try:
        sdk.identity.add_user_to_group(user, group)
        assert sdk.identity.check_user_in_group(user, group)
        sdk.identity.assign_project_role_to_group(project, group, member)
        effective = list(sdk.identity.role_assignments(user_id=user.id, effective=True, include_names=True))
        assert {(a.role["name"], a.scope["project"]["id"]) for a in effective} == {
            ("member", project.id), ("reader", project.id)}
        sdk.identity.unassign_project_role_from_group(project, group, member)
        assert list(sdk.identity.role_assignments(user_id=user.id, effective=True)) == []
    finally:
        sdk.identity.delete_user(user)
        sdk.identity.delete_group(group)
        sdk.identity.delete_project(project)


def test_sdk_application_credential_with_a_role_not_held_is_400(sdk: openstack.connection.Connection) -> None:
    """Keystone's API turns the manager's RoleAssignmentNotFound into ApplicationCredentialValidationError:
    a 400 for a role the user does not hold on the project."""
    role = sdk.identity.create_role(name=unique("not-held"))
    try:
        with pytest.raises(openstack.exceptions.BadRequestException):
            sdk.identity.create_application_credential(sdk.current_user_id, name=unique("cred"),
                                                       roles=[{"id": role.id}])
    finally:
        sdk.identity.delete_role(role)
