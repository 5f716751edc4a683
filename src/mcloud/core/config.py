"""Configuration: one TOML file, a section per service, environment overrides, flag overrides.

Precedence, lowest first: dataclass defaults, ``mcloud.toml`` (in the data dir, or
``--config``), environment variables ``MCLOUD_<SECTION>_<KEY>``, command-line flags.

Core defines the sections it owns (``server``, ``database``); each service declares its
own section as a dataclass and reads it with :meth:`Config.section`, so core knows no
service.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_DATA_DIR = Path("~/.local/share/mcloud").expanduser()


class ConfigError(ValueError):
    """The configuration file or an override is not valid."""


@dataclasses.dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    # The URL clients reach the listener at; defaults to http://host:port.
    public_url: str = ""
    region: str = "RegionOne"
    log_level: str = "info"
    # Processes serving the listener. Each keeps its own caches, kept coherent through the
    # database (see core/generations.py); more than one uses more cores and more memory.
    workers: int = 1


@dataclasses.dataclass
class DatabaseConfig:
    # Empty means the embedded default: SQLite (WAL) in the data dir.
    url: str = ""
    pool_size: int = 5


def _coerce(value: Any, kind: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        kinds = [k for k in typing.get_args(kind) if k is not type(None)]
        if value is None:
            return None
        return _coerce(value, kinds[0], where)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: expected a boolean, got {value!r}")
    if kind is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if kind is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if kind is str:
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(kind) or (str,)
        return [_coerce(v, item, where) for v in value]
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return value
    return value


class Config:
    """The whole configuration: raw sections from the file, resolved lazily per dataclass."""

    def __init__(
        self,
        data_dir: Path | str | None = None,
        file: Path | str | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        environ: dict[str, str] | None = None,
    ):
        environ = dict(os.environ if environ is None else environ)
        self.data_dir = Path(
            data_dir or environ.get("MCLOUD_DATA_DIR") or DEFAULT_DATA_DIR
        ).expanduser().resolve()
        self.file = Path(file).expanduser() if file else self.data_dir / "mcloud.toml"
        self._raw: dict[str, dict[str, Any]] = {}
        if self.file.exists():
            try:
                self._raw = tomllib.loads(self.file.read_text())
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{self.file}: {exc}") from None
        elif file:
            raise ConfigError(f"{self.file}: no such configuration file")
        self._environ = environ
        self._overrides = {k: dict(v) for k, v in (overrides or {}).items()}
        self._cache: dict[str, Any] = {}

    def section(self, name: str, kind: type[T]) -> T:
        """The section ``name`` as an instance of the dataclass ``kind``."""
        if name in self._cache:
            return self._cache[name]
        values: dict[str, Any] = {}
        raw = self._raw.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{self.file}: [{name}] must be a table")
        hints = typing.get_type_hints(kind)
        known = {f.name for f in dataclasses.fields(kind)}
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"{self.file}: [{name}] has unknown keys: {', '.join(sorted(unknown))}")
        for field in dataclasses.fields(kind):
            where = f"[{name}] {field.name}"
            if field.name in raw:
                values[field.name] = _coerce(raw[field.name], hints[field.name], where)
            env = self._environ.get(f"MCLOUD_{name}_{field.name}".upper())
            if env is not None:
                values[field.name] = _coerce(env, hints[field.name], f"MCLOUD_{name}_{field.name}".upper())
            override = self._overrides.get(name, {}).get(field.name)
            if override is not None:
                values[field.name] = _coerce(override, hints[field.name], f"--{field.name}")
        obj = kind(**values)
        self._cache[name] = obj
        return obj

    @property
    def server(self) -> ServerConfig:
        return self.section("server", ServerConfig)

    @property
    def database(self) -> DatabaseConfig:
        return self.section("database", DatabaseConfig)

    @property
    def public_url(self) -> str:
        server = self.server
        if server.public_url:
            return server.public_url.rstrip("/")
        host = server.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{server.port}"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_dir / 'mcloud.db'}"

    def environ(self, name: str) -> str | None:
        return self._environ.get(name)
