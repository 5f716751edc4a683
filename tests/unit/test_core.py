import pytest

from mcloud.core.config import Config, ConfigError, ServerConfig
from mcloud.core.errors import BadRequest, NotAcceptable
from mcloud.core.microversions import Version, VersionRange


def test_config_precedence(tmp_path):
    (tmp_path / "mcloud.toml").write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n')
    cfg = Config(data_dir=tmp_path, environ={"MCLOUD_SERVER_PORT": "9100"})
    assert cfg.server.port == 9100  # environment beats the file
    assert cfg.server.host == "0.0.0.0"
    cfg = Config(data_dir=tmp_path, environ={"MCLOUD_SERVER_PORT": "9100"}, overrides={"server": {"port": 9200}})
    assert cfg.server.port == 9200  # flags beat both
    assert cfg.public_url == "http://127.0.0.1:9200"  # a wildcard address is not a URL a client can use


def test_config_errors(tmp_path):
    (tmp_path / "mcloud.toml").write_text("[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match="unknown keys: prot"):
        Config(data_dir=tmp_path, environ={}).server
    with pytest.raises(ConfigError, match="expected an integer"):
        Config(data_dir=tmp_path / "x", environ={"MCLOUD_SERVER_PORT": "eighty"}).section("server", ServerConfig)
    with pytest.raises(ConfigError, match="no such configuration file"):
        Config(data_dir=tmp_path, file=tmp_path / "missing.toml", environ={})


def test_database_default_is_sqlite_in_data_dir(tmp_path):
    cfg = Config(data_dir=tmp_path, environ={})
    assert cfg.database_url == f"sqlite:///{tmp_path.resolve() / 'mcloud.db'}"


RANGE = VersionRange("compute", Version(2, 1), Version(2, 96), legacy_header="X-OpenStack-Nova-API-Version")


@pytest.mark.parametrize("headers,expected", [
    ({}, "2.1"),
    ({"openstack-api-version": "compute 2.60"}, "2.60"),
    ({"openstack-api-version": "compute latest"}, "2.96"),
    ({"openstack-api-version": "volume 3.5, compute 2.10"}, "2.10"),
    ({"x-openstack-nova-api-version": "2.5"}, "2.5"),
])
def test_microversion_negotiation(headers, expected):
    assert str(RANGE.negotiate(headers)) == expected


def test_microversion_errors():
    with pytest.raises(NotAcceptable):
        RANGE.negotiate({"openstack-api-version": "compute 2.97"})
    with pytest.raises(BadRequest):
        RANGE.negotiate({"openstack-api-version": "compute 2.x"})
    headers = RANGE.response_headers(Version(2, 10))
    assert headers["OpenStack-API-Version"] == "compute 2.10"
    assert "OpenStack-API-Version" in headers["Vary"]
    assert Version(2, 9) < Version(2, 10)
