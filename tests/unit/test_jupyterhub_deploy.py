"""deploy/jupyterhub: the Helm values validate against the z2jh chart's own values schema, the
user pod they render (`z2jh_pod.user_pod`) validates against Kubernetes 1.36's schema and passes
the API server's security-context rules, it grants the sandbox what it needs and no more, and the
image installs the sandbox's tools. The chart's schema and values.yaml are test data copied from
jupyterhub/zero-to-jupyterhub-k8s 4.4.0 (``tests/unit/data/z2jh/README.md``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from z2jh_pod import api_refusals, merged, user_pod

from labkit import manifests

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "jupyterhub"
DATA = Path(__file__).parent / "data" / "z2jh"


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((DEPLOY / "values.yaml").read_text())


@pytest.fixture(scope="module")
def chart_defaults() -> dict:
    return yaml.safe_load((DATA / "values.yaml").read_text())


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads((DATA / "values.schema.json").read_text())


@pytest.fixture(scope="module")
def pod(chart_defaults, values) -> dict:
    return user_pod(chart_defaults, values, "ada")


def test_values_validate_against_the_charts_schema(schema, chart_defaults, values):
    """Helm validates the chart's values.yaml coalesced with ours against the chart's
    ``values.schema.json`` (z2jh ``tools/validate-against-schema.py`` does the same in CI)."""
    jsonschema.validate(merged(chart_defaults, values), schema)


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("cull", "timeout"), "half an hour"),
        (("singleuser", "extraPodConfig"), ["hostUsers"]),
        (("singleuser", "uid"), "root"),
        (("singleuser", "noSuchKey"), 1),
    ],
)
def test_the_schema_catches_a_mistake(schema, chart_defaults, values, path, bad):
    """The copy is the real schema: a wrong type or an unknown key fails as helm would."""
    broken = json.loads(json.dumps(values))
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(merged(chart_defaults, broken), schema)


def test_rendered_pod_validates_against_kubernetes_1_36(pod):
    """kubernetes-validate (strict: no unknown fields) on the Pod kubespawner's ``make_pod``
    would create, then labkit's own API-server rules (`manifests.problems`)."""
    kubernetes_validate.validate(pod, manifests.KUBERNETES_VERSION, strict=True)
    assert manifests.problems(pod) == []


def test_rendered_pod_passes_the_api_servers_security_rules(pod):
    """validation.go ``ValidateSecurityContext`` and ``validateHostUsers``: none refused."""
    assert api_refusals(pod) == []


def test_the_api_rules_are_not_vacuous(pod):
    """Each rule refuses its case: CAP_SYS_ADMIN spelt so beside the chart's
    allowPrivilegeEscalation false, Unmasked without a user namespace, a host network in one."""
    broken = json.loads(json.dumps(pod))
    sc = broken["spec"]["containers"][0]["securityContext"]
    sc["capabilities"]["add"] = ["NET_ADMIN", "CAP_SYS_ADMIN"]
    broken["spec"]["hostNetwork"] = True
    assert [p.split(":")[0] for p in api_refusals(broken)] == ["notebook", "hostNetwork"]
    del broken["spec"]["hostUsers"]
    assert "notebook: procMount Unmasked needs hostUsers: false" in api_refusals(broken)


def test_pod_grants_the_sandbox_what_it_needs_and_no_more(pod):
    """What the sandbox needs in a container (README "Past one machine"): NET_ADMIN and
    SYS_ADMIN, root, an unmasked /proc and no AppArmor mount ban, in a user namespace; never
    privileged, never the host's network, PID or IPC namespaces."""
    spec = pod["spec"]
    notebook = spec["containers"][0]
    sc = notebook["securityContext"]
    assert sc["capabilities"] == {"add": ["NET_ADMIN", "SYS_ADMIN"]}
    assert sc["runAsUser"] == 0 and sc["allowPrivilegeEscalation"] is False
    assert sc["procMount"] == "Unmasked" and sc["appArmorProfile"] == {"type": "Unconfined"}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["hostUsers"] is False
    every = [*spec.get("initContainers", []), *spec["containers"]]
    assert not any((c.get("securityContext") or {}).get("privileged") for c in every)
    assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    assert spec["automountServiceAccountToken"] is False


def test_pod_runs_the_server_as_root_and_records_progress_per_learner(pod):
    """docker-stacks ``start.sh``: NB_USER root with NB_UID/NB_GID 0 keeps the server root;
    kubespawner ``KubeSpawner.get_env`` expands ``{username}`` in extraEnv, so each learner's
    progress file is ``/srv/class/<name>.jsonl`` (the class dashboard's folder)."""
    notebook = pod["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in notebook["env"]}
    assert env == {
        "NB_USER": "root",
        "NB_UID": "0",
        "NB_GID": "0",
        "LABKIT_PROGRESS": "/srv/class/ada.jsonl",
    }
    assert notebook["args"] == ["jupyterhub-singleuser", "--allow-root"]
    mounts = {m["mountPath"]: m["name"] for m in notebook["volumeMounts"]}
    assert mounts == {"/home/root": "volume-ada", "/srv/class": "class-progress"}


def test_resources_and_culling_are_sized(pod, chart_defaults, values):
    """The guarantee covers the measured pod (about 225 MB) with room; an idle pod goes after
    30 minutes (jupyterhub-idle-culler ``--timeout``)."""
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources == {
        "requests": {"cpu": "0.1", "memory": "384M"},
        "limits": {"cpu": "1", "memory": "1G"},
    }
    cull = merged(chart_defaults, values)["cull"]
    assert cull["enabled"] is True and cull["timeout"] == 1800 and cull["every"] == 300


def test_the_charts_defaults_alone_would_not_run_the_sandbox(chart_defaults):
    """Without our values: uid 1000, no capabilities, and the privileged metadata blocker."""
    bare = user_pod(chart_defaults, {"singleuser": {"image": {"tag": "x"}}})
    sc = bare["spec"]["containers"][0]["securityContext"]
    assert sc == {"runAsUser": 1000, "allowPrivilegeEscalation": False}
    assert bare["spec"]["initContainers"][0]["securityContext"]["privileged"] is True


def test_image_installs_the_makefiles_system_tools_on_a_pinned_base():
    """The Dockerfile's apt list is the Makefile's APT_PACKAGES without chromium (the browser
    tests' only); the base is docker-stacks' base-notebook pinned by tag and digest."""
    docker = (DEPLOY / "Dockerfile").read_text()
    make = (ROOT / "Makefile").read_text()
    wanted = set(re.search(r"^APT_PACKAGES :=(.*)$", make, re.M).group(1).split()) - {"chromium"}
    install = re.search(r"--no-install-recommends \\\n(.*?)\\\n\s*&&", docker, re.S).group(1)
    assert set(install.replace("\\", " ").split()) == wanted
    base = re.search(r"^FROM (\S+)$", docker, re.M).group(1)
    assert re.fullmatch(
        r"quay\.io/jupyter/base-notebook:\d{4}-\d{2}-\d{2}@sha256:[0-9a-f]{64}", base
    )
    assert "COPY labkit /opt/labkit/src/labkit" in docker
    assert "COPY lessons /opt/labkit/lessons" in docker
    assert "pip install --no-cache-dir /opt/labkit/src" in docker
