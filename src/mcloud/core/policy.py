"""Policy: oslo.policy's check-string language, OpenStack's secure-RBAC defaults per service,
overridable by a YAML (or JSON) policy file whose rules win over the defaults.

A check string is the language operators already write for OpenStack, e.g.
``(role:reader and system_scope:all) or user_id:%(target.user.id)s``:

- ``role:NAME``: the token carries role NAME (implied roles included);
- ``rule:NAME``: another rule;
- ``KEY:VALUE``: the credential KEY equals VALUE, where VALUE may be ``%(target.x)s`` (from the
  target), a literal, or ``True``/``False``;
- ``@`` always, ``!`` never, with ``and``, ``or``, ``not`` and parentheses.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from mcloud.core.errors import Forbidden

Check = Callable[[Mapping[str, Any], Mapping[str, Any], "Enforcer"], bool]

_TOKEN = re.compile(r"\(|\)|(?:%\([^)]*\)s|[^\s()])+")
_MISSING = object()


class PolicyError(ValueError):
    """A check string that cannot be parsed."""


def flatten(target: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"target": {"user": {"id": 1}}}`` -> ``{"target.user.id": 1}`` (nested keys kept too)."""
    out: dict[str, Any] = {}
    for key, value in target.items():
        name = f"{prefix}{key}"
        out[name] = value
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
    return out


def _resolve(value: str, target: Mapping[str, Any]) -> Any:
    if "%(" not in value:
        return value
    try:
        return value % _StrictTarget(target)
    except KeyError:
        return _MISSING


class _StrictTarget(dict):
    def __init__(self, target: Mapping[str, Any]):
        super().__init__(target)

    def __missing__(self, key: str) -> Any:
        raise KeyError(key)


def _literal(kind: str) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(kind)
    except (ValueError, SyntaxError):
        return False, None


def _generic(kind: str, match: str) -> Check:
    is_literal, literal = _literal(kind)

    def check(creds: Mapping[str, Any], target: Mapping[str, Any], _enf: Enforcer) -> bool:
        wanted = _resolve(match, target)
        if wanted is _MISSING:
            return False
        if is_literal:
            return str(literal) == str(wanted)
        have = creds.get(kind, _MISSING)
        if have is _MISSING or have is None:
            return False
        if isinstance(have, bool):
            return str(have) == str(wanted)
        if isinstance(have, (list, tuple, set, frozenset)):
            return str(wanted) in {str(h) for h in have}
        return str(have) == str(wanted)

    return check


def _role(name: str) -> Check:
    def check(creds: Mapping[str, Any], target: Mapping[str, Any], _enf: Enforcer) -> bool:
        wanted = _resolve(name, target)
        if wanted is _MISSING:
            return False
        return str(wanted).lower() in {r.lower() for r in creds.get("roles", ())}

    return check


def _rule(name: str) -> Check:
    def check(creds: Mapping[str, Any], target: Mapping[str, Any], enf: Enforcer) -> bool:
        return enf.check(name, creds, target)

    return check


def _always(*_a: Any) -> bool:
    return True


def _never(*_a: Any) -> bool:
    return False


def parse(text: str) -> Check:
    """Compile a check string. An empty string allows everything, as in oslo.policy."""
    tokens = _TOKEN.findall(text or "")
    if not tokens:
        return _always
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def or_expr() -> Check:
        parts = [and_expr()]
        while peek() == "or":
            take()
            parts.append(and_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda c, t, e: any(p(c, t, e) for p in parts)

    def and_expr() -> Check:
        parts = [not_expr()]
        while peek() == "and":
            take()
            parts.append(not_expr())
        if len(parts) == 1:
            return parts[0]
        return lambda c, t, e: all(p(c, t, e) for p in parts)

    def not_expr() -> Check:
        if peek() == "not":
            take()
            inner = not_expr()
            return lambda c, t, e: not inner(c, t, e)
        return atom()

    def atom() -> Check:
        token = peek()
        if token is None:
            raise PolicyError(f"unexpected end of check string: {text!r}")
        take()
        if token == "(":
            inner = or_expr()
            if peek() != ")":
                raise PolicyError(f"unbalanced parentheses in {text!r}")
            take()
            return inner
        if token == "@":
            return _always
        if token == "!":
            return _never
        if ":" not in token:
            raise PolicyError(f"not a check: {token!r} in {text!r}")
        kind, match = token.split(":", 1)
        if kind == "rule":
            return _rule(match)
        if kind == "role":
            return _role(match)
        return _generic(kind, match)

    result = or_expr()
    if pos != len(tokens):
        raise PolicyError(f"unexpected {tokens[pos]!r} in {text!r}")
    return result


def _scope_of(creds: Mapping[str, Any]) -> str | None:
    if creds.get("system_scope"):
        return "system"
    if creds.get("project_id"):
        return "project"
    if creds.get("domain_id"):
        return "domain"
    return None


class Enforcer:
    """Registered default rules, overridden by the operator's policy file.

    Each service has a namespace of its own (``scoped(name)``), because OpenStack's services
    reuse base rule names with different meanings (Glance's ``service_api`` lets an admin in,
    Placement's does not; every service has its own ``context_is_admin``): a ``rule:`` reference
    resolves within the namespace of the rule that makes it. The policy file is shared: a name
    it overrides is overridden in every namespace that has it.
    """

    def __init__(self, policy_file: Path | None = None, *, _shared: Enforcer | None = None, service: str = ""):
        self.service = service
        self._defaults: dict[str, str] = {}
        self._compiled: dict[str, Check] = {}
        self._scope_types: dict[str, tuple[str, ...]] = {}
        self._root = _shared or self
        if _shared is None:
            self._overrides: dict[str, str] = {}
            self._namespaces: dict[str, Enforcer] = {service: self}
            if policy_file is not None and policy_file.exists():
                self.load_overrides(policy_file)

    def scoped(self, service: str) -> Enforcer:
        """The namespace of ``service`` (made on first use), sharing this enforcer's policy file."""
        root = self._root
        if service not in root._namespaces:
            root._namespaces[service] = Enforcer(_shared=root, service=service)
        return root._namespaces[service]

    def load_overrides(self, path: Path) -> None:
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise PolicyError(f"{path}: a policy file maps rule names to check strings")
        for name, rule in data.items():
            parse(str(rule))  # fail early on a bad rule
        root = self._root
        root._overrides = {str(k): str(v) for k, v in data.items()}
        for namespace in root._namespaces.values():
            namespace._compiled.clear()

    def register(self, rules: Mapping[str, str]) -> None:
        """Add default rules to this namespace. A name registered before with another rule is an
        error (two parts of one service disagreeing), never a silent replacement."""
        for name, rule in rules.items():
            parse(rule)
            if self._defaults.get(name, rule) != rule:
                raise PolicyError(f"policy rule {name!r} of {self.service or 'the default namespace'} is "
                                  f"registered twice with different rules: {self._defaults[name]!r} and {rule!r}")
            self._defaults[name] = rule
        self._compiled.clear()

    def register_scope_types(self, scope_types: Mapping[str, tuple[str, ...]]) -> None:
        """oslo.policy's ``scope_types`` with ``enforce_scope``: a token of another scope
        (``system``, ``domain``, ``project``) fails rule NAME whatever its roles."""
        self._scope_types.update({name: tuple(kinds) for name, kinds in scope_types.items()})

    def rule(self, name: str) -> str | None:
        return self._root._overrides.get(name, self._defaults.get(name))

    def check(self, name: str, creds: Mapping[str, Any], target: Mapping[str, Any]) -> bool:
        compiled = self._compiled.get(name)
        if compiled is None:
            text = self.rule(name)
            if text is None:
                return False
            compiled = self._compiled[name] = parse(text)
        return compiled(creds, target, self)

    def authorize(self, name: str, creds: Mapping[str, Any], target: Mapping[str, Any] | None = None) -> None:
        """Raise 403 unless ``creds`` pass rule ``name`` for ``target``."""
        if name not in self._defaults and name not in self._root._overrides:
            raise KeyError(f"policy rule {name!r} is not registered")
        kinds = self._scope_types.get(name)
        if kinds is not None and _scope_of(creds) not in kinds:
            raise Forbidden(f"You are not authorized to perform the requested action: {name} "
                            f"(it needs a token scoped to a {' or '.join(kinds)}).")
        if not self.check(name, creds, flatten(target or {})):
            raise Forbidden(f"You are not authorized to perform the requested action: {name}.")


def optional_modules(names: tuple[str, ...]) -> list[Any]:
    """The modules of ``names`` that exist (a part of a service that has not landed yet is
    skipped; an import error inside an existing module is raised)."""
    import importlib  # noqa: PLC0415

    out = []
    for name in names:
        try:
            out.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return out


def merged_rules(service: str, base: Mapping[str, str], parts: tuple[str, ...]) -> dict[str, str]:
    """``base`` with the ``RULES`` of every module of ``parts`` that exists; two parts giving one
    rule different check strings is an error."""
    rules = dict(base)
    for module in optional_modules(parts):
        for rule, check in getattr(module, "RULES", {}).items():
            if rules.get(rule, check) != check:
                raise ValueError(f"{service} policy rule {rule!r} of {module.__name__} differs from the one "
                                 "registered before")
            rules[rule] = check
    return rules
