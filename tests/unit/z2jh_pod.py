"""The user pod Zero to JupyterHub renders for a values file, derived without a cluster: a sketch
of the chart's mapping (jupyterhub 4.4.0, ``files/hub/jupyterhub_config.py``: singleuser.* to
KubeSpawner traits, hub.config.KubeSpawner passed through) and of kubespawner 7's
``objects.make_pod`` (the security contexts, the notebook container, the volumes,
``extra_pod_config`` merged into the spec last). It covers the fields our values set or the chart
defaults; kubespawner adds more (labels, annotations, the hub's environment) that no check here
depends on. Pure: test data in, a Pod dict out."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def merged(defaults: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of a values file over the chart's values.yaml: maps merge key by key,
    anything else replaces; a null in the values file keeps the key as null."""
    out = copy.deepcopy(dict(defaults))
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _expand(text: str, username: str) -> str:
    """kubespawner's ``_expand_user_properties`` for ``{username}`` (already a safe slug here)."""
    return text.replace("{username}", username).replace("{user_server}", username)


def user_pod(
    defaults: Mapping[str, Any], values: Mapping[str, Any], username: str = "ada"
) -> dict[str, Any]:
    """The Pod KubeSpawner would create for ``username`` with these values over the chart's."""
    v = merged(defaults, values)
    su = v["singleuser"]
    spawner = (v.get("hub", {}).get("config") or {}).get("KubeSpawner") or {}

    csc: dict[str, Any] = {}
    if su.get("uid") is not None:
        csc["runAsUser"] = int(su["uid"])
    if su.get("allowPrivilegeEscalation") is not None:
        csc["allowPrivilegeEscalation"] = su["allowPrivilegeEscalation"]
    csc.update(spawner.get("container_security_context") or {})
    psc: dict[str, Any] = {}
    if su.get("fsGid") is not None:
        psc["fsGroup"] = int(su["fsGid"])
    psc.update(spawner.get("pod_security_context") or {})

    requests = {
        k: str(su[k]["guarantee"]) for k in ("cpu", "memory") if su[k].get("guarantee") is not None
    }
    limits = {k: str(su[k]["limit"]) for k in ("cpu", "memory") if su[k].get("limit") is not None}
    env = [
        {"name": name, "value": _expand(str(value), username)}
        for name, value in sorted((su.get("extraEnv") or {}).items())
    ]
    mounts = [{"name": f"volume-{username}", "mountPath": su["storage"]["homeMountPath"]}]
    mounts += su["storage"].get("extraVolumeMounts") or []
    volumes = [
        {"name": f"volume-{username}", "persistentVolumeClaim": {"claimName": f"claim-{username}"}}
    ]
    volumes += su["storage"].get("extraVolumes") or []
    cmd = su.get("cmd")
    container: dict[str, Any] = {
        "name": "notebook",
        "image": f"{su['image']['name']}:{su['image']['tag']}",
        "args": [cmd] if isinstance(cmd, str) else list(cmd or []),
        "ports": [{"name": "notebook-port", "containerPort": 8888}],
        "env": env,
        "resources": {"requests": requests, "limits": limits},
        "volumeMounts": mounts,
    }
    if csc:
        container["securityContext"] = csc
    if su.get("lifecycleHooks"):
        container["lifecycle"] = su["lifecycleHooks"]
    spec: dict[str, Any] = {
        "restartPolicy": "OnFailure",
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": volumes,
    }
    if psc:
        spec["securityContext"] = psc
    if su["cloudMetadata"].get("blockWithIptables"):
        spec["initContainers"] = [_metadata_blocker(su)]
    spec.update(su.get("extraPodConfig") or {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"jupyter-{username}", "labels": {"component": "singleuser-server"}},
        "spec": spec,
    }


def _metadata_blocker(su: Mapping[str, Any]) -> dict[str, Any]:
    """The chart's privileged init container that blocks the cloud metadata server."""
    tools = su["networkTools"]["image"]
    return {
        "name": "block-cloud-metadata",
        "image": f"{tools['name']}:{tools['tag']}",
        "command": [
            "iptables",
            "--append",
            "OUTPUT",
            "--protocol",
            "tcp",
            "--destination",
            su["cloudMetadata"]["ip"],
            "--destination-port",
            "80",
            "--jump",
            "DROP",
        ],
        "securityContext": {
            "privileged": True,
            "runAsUser": 0,
            "capabilities": {"add": ["NET_ADMIN"]},
        },
    }


def api_refusals(pod: Mapping[str, Any]) -> list[str]:
    """What the API server refuses in this pod beyond its schema, for the fields our values
    touch: kubernetes pkg/apis/core/validation/validation.go ``ValidateSecurityContext`` (no
    allowPrivilegeEscalation false beside privileged or an added "CAP_SYS_ADMIN", spelt so),
    ``validateHostUsers`` (no host network, PID or IPC in a user namespace), and KEP-4265's
    procMount Unmasked only with hostUsers false."""
    spec = pod["spec"]
    problems = []
    for c in [*spec.get("initContainers", []), *spec["containers"]]:
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is False:
            if sc.get("privileged"):
                problems.append(
                    f"{c['name']}: cannot set `allowPrivilegeEscalation` to false and "
                    "`privileged` to true"
                )
            if "CAP_SYS_ADMIN" in ((sc.get("capabilities") or {}).get("add") or []):
                problems.append(
                    f"{c['name']}: cannot set `allowPrivilegeEscalation` to false and "
                    "`capabilities.Add` CAP_SYS_ADMIN"
                )
        if sc.get("procMount") == "Unmasked" and spec.get("hostUsers", True):
            problems.append(f"{c['name']}: procMount Unmasked needs hostUsers: false")
    if spec.get("hostUsers") is False:
        problems += [
            f"{k}: forbidden when `pod.Spec.HostUsers` is false"
            for k in ("hostNetwork", "hostPID", "hostIPC")
            if spec.get(k)
        ]
    return problems
