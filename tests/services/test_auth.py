"""Secure by default: which token `uplift serve` requires (services/auth.py) and RayConfig's checks."""
from __future__ import annotations

import pytest

from uplift.core.errors import ConfigError
from uplift.services.auth import default_token_file, display_url, no_token_warning, resolve_token, token_notice
from uplift.services.config import RayConfig


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_loopback_needs_no_token(host, tmp_path):
    assert resolve_token(host, 8765, None, token_file=tmp_path / "t").token is None
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "studio-gpu"])
def test_any_other_bind_generates_a_private_token(host, tmp_path):
    path = tmp_path / "sub" / "serve.token"
    first = resolve_token(host, 8765, None, token_file=path)
    assert first.generated_file == path and len(first.token) >= 40
    assert path.read_text().strip() == first.token and (path.stat().st_mode & 0o777) == 0o600
    second = resolve_token(host, 8765, None, token_file=path)
    assert second.token != first.token and path.read_text().strip() == second.token   # a fresh one each start
    notice = token_notice(host, 8765, first)
    assert notice.count(first.token) == 1 and str(path) in notice and ":8765" in notice


def test_a_given_token_or_no_token_wins(tmp_path):
    assert resolve_token("0.0.0.0", 1, "mine", token_file=tmp_path / "t") == resolve_token("0.0.0.0", 1, "mine")
    assert resolve_token("0.0.0.0", 1, "mine").token == "mine"
    assert resolve_token("0.0.0.0", 1, None, no_token=True, token_file=tmp_path / "t").token is None
    assert not (tmp_path / "t").exists()
    with pytest.raises(ConfigError, match="contradict"):
        resolve_token("0.0.0.0", 1, "mine", no_token=True)
    assert "ANYONE" in no_token_warning("0.0.0.0", 8765)


def test_token_file_and_url_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_token_file(9000) == tmp_path / "uplift" / "serve-9000.token"
    assert display_url("10.0.0.2", 80) == "http://10.0.0.2:80"
    assert display_url("0.0.0.0", 80).startswith("http://") and "0.0.0.0" not in display_url("0.0.0.0", 80)


@pytest.mark.parametrize("fields, message", [
    ({"replicas": 0}, "replicas must be an integer >= 1"),
    ({"max_ongoing": 0}, "max-ongoing"),
    ({"cpus_per_replica": 0}, "cpus-per-replica"),
    ({"gpus_per_replica": -1}, "gpus-per-replica"),
    ({"min_replicas": 1}, "both --min-replicas and --max-replicas"),
    ({"min_replicas": 2, "max_replicas": 4, "replicas": 1}, "min-replicas <= replicas"),
    ({"address": " "}, "must not be empty"),
])
def test_ray_config_refuses_nonsense(fields, message):
    with pytest.raises(ConfigError, match=message):
        RayConfig(**fields)


def test_ray_config_threads_follow_the_cpu_share():
    assert RayConfig().threads == 1 and RayConfig(cpus_per_replica=0.5).threads == 1
    assert RayConfig(cpus_per_replica=4).threads == 4
    assert RayConfig(min_replicas=0, max_replicas=3).autoscaling
