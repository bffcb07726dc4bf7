"""A Kind lab on a learner's laptop (issue 14): what `labkit up --backend kind --dry-run` prints,
with no Docker engine needed."""

from __future__ import annotations

import pytest
import yaml

from labkit import cli

CNIS = ("flannel", "calico", "cilium")


def _dry_run_config(capsys, cni: str, name: str) -> tuple[str, dict]:
    assert cli.main(["up", "--backend", "kind", "--cni", cni, "--name", name, "--dry-run"]) == 0
    text = capsys.readouterr().out
    rendered = [line[4:] for line in text.splitlines() if line.startswith("  | ")]
    return text, yaml.safe_load("\n".join(rendered))


@pytest.mark.parametrize("cni", CNIS)
def test_dry_run_maps_no_host_port(cni, capsys, monkeypatch, tmp_path):
    """kind's v1alpha4 Node.extraPortMappings (pkg/apis/config/v1alpha4/types.go) is what binds
    host ports: the printed config of every CNI has none, so 80/443 stay free."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    text, config = _dry_run_config(capsys, cni, "netlab")
    assert config["kind"] == "Cluster" and len(config["nodes"]) == 3
    assert all("extraPortMappings" not in node for node in config["nodes"])
    assert "hostPort" not in text and "127.0.0.1:80" not in text
    assert "ports 80 and 443" not in text
