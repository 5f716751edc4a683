import pytest

from mcloud.core.errors import Forbidden
from mcloud.core.policy import Enforcer, PolicyError, flatten, parse

ADMIN = {"roles": ["admin", "member", "reader"], "user_id": "u1", "system_scope": None, "domain_id": None}
SYSTEM_READER = {"roles": ["reader"], "user_id": "u2", "system_scope": "all"}
DOMAIN_READER = {"roles": ["reader"], "user_id": "u3", "domain_id": "d1"}
MEMBER = {"roles": ["member", "reader"], "user_id": "u4", "project_id": "p1"}


def check(rule: str, creds: dict, target: dict | None = None) -> bool:
    enf = Enforcer()
    enf.register({"admin_required": "role:admin or is_admin:1", "r": rule})
    return enf.check("r", creds, flatten(target or {}))


@pytest.mark.parametrize("creds,expected", [(ADMIN, True), (SYSTEM_READER, True), (DOMAIN_READER, False),
                                            (MEMBER, False)])
def test_keystone_list_endpoints_rule(creds, expected):
    assert check("rule:admin_required or (role:reader and system_scope:all)", creds) is expected


def test_target_substitution_and_domain_scope():
    rule = "(role:reader and domain_id:%(target.user.domain_id)s) or user_id:%(target.user.id)s"
    assert check(rule, DOMAIN_READER, {"target": {"user": {"domain_id": "d1", "id": "x"}}})
    assert not check(rule, DOMAIN_READER, {"target": {"user": {"domain_id": "d2", "id": "x"}}})
    assert check(rule, MEMBER, {"target": {"user": {"domain_id": "d2", "id": "u4"}}})
    # a target attribute the caller did not supply never matches
    assert not check(rule, MEMBER, {})


def test_literals_and_not():
    rule = "role:reader and domain_id:%(target.p.domain_id)s and not None:%(target.p.domain_id)s"
    assert check(rule, DOMAIN_READER, {"target": {"p": {"domain_id": "d1"}}})
    assert not check(rule, {**DOMAIN_READER, "domain_id": None}, {"target": {"p": {"domain_id": None}}})
    assert check("'member':%(target.role.name)s", MEMBER, {"target": {"role": {"name": "member"}}})
    assert not check("'member':%(target.role.name)s", MEMBER, {"target": {"role": {"name": "admin"}}})


def test_always_never_and_empty():
    assert check("@", {}) and check("", {}) and not check("!", ADMIN)


@pytest.mark.parametrize("bad", ["role:admin or", "(role:admin", "role:admin)", "nonsense"])
def test_malformed_rules_are_rejected(bad):
    with pytest.raises(PolicyError):
        parse(bad)


def test_override_file_wins(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('"identity:list_users": "role:member"\n')
    enf = Enforcer(path)
    enf.register({"identity:list_users": "role:admin"})
    enf.authorize("identity:list_users", MEMBER, {})
    strict = Enforcer()
    strict.register({"identity:list_users": "role:admin"})
    with pytest.raises(Forbidden) as err:
        strict.authorize("identity:list_users", MEMBER, {})
    assert "identity:list_users" in err.value.message


def test_bad_override_file_fails_early(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('"x": "role:admin and"\n')
    with pytest.raises(PolicyError):
        Enforcer(path)


def test_unregistered_rule_is_a_programming_error():
    with pytest.raises(KeyError):
        Enforcer().authorize("identity:nope", ADMIN, {})


def test_services_keep_their_own_base_rules(tmp_path):
    """Glance's service_api lets an admin in and Placement's does not: each service's rules
    resolve their `rule:` references among that service's own rules."""
    enf = Enforcer()
    image, placement = enf.scoped("image"), enf.scoped("placement")
    image.register({"service_api": "role:service or role:admin", "copy_image": "rule:service_api"})
    placement.register({"service_api": "role:service", "placement:reshaper": "rule:service_api"})
    assert image.check("copy_image", ADMIN, {})
    assert not placement.check("placement:reshaper", ADMIN, {})
    assert enf.scoped("image") is image and image.scoped("placement") is placement
    with pytest.raises(KeyError):
        placement.authorize("copy_image", ADMIN, {})  # another service's rule is not this one's


def test_policy_file_overrides_a_name_in_every_service(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('service_api: "role:admin"\n')
    enf = Enforcer(path)
    enf.scoped("image").register({"service_api": "role:service", "a": "rule:service_api"})
    enf.scoped("placement").register({"service_api": "role:service", "b": "rule:service_api"})
    assert enf.scoped("image").check("a", ADMIN, {}) and enf.scoped("placement").check("b", ADMIN, {})


def test_one_service_registering_a_name_twice_differently_is_an_error():
    enf = Enforcer().scoped("network")
    enf.register({"admin_only": "role:admin"})
    enf.register({"admin_only": "role:admin"})  # the same rule again is fine
    with pytest.raises(PolicyError):
        enf.register({"admin_only": "role:member"})
