"""kubectl describe pod's ``Mounts:`` (per container) and ``Volumes:`` fields, pure: upstream's
``describeContainerVolumes`` and ``describeVolumes`` (kubectl ``pkg/describe/describe.go``) for
the volume types the scenarios use, as ``(indent level, text)`` lines for the describe writer."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from labkit.tables import EMPTY

Line = tuple[int, str]


def mounts(container: Mapping[str, Any]) -> list[Line]:
    """``Mounts:`` then ``PATH from VOLUME (rw|ro[,path="SUB"])`` by path, or ``<none>``."""
    found = sorted(container.get("volumeMounts") or [], key=lambda m: str(m.get("mountPath")))
    if not found:
        return [(2, f"Mounts:\t{EMPTY}")]
    lines: list[Line] = [(2, "Mounts:")]
    for mount in found:
        flags = ["ro" if mount.get("readOnly") else "rw"]
        if mount.get("subPath"):
            flags.append(f"path={json.dumps(mount['subPath'])}")
        lines.append((3, f"{mount.get('mountPath')} from {mount.get('name')} ({','.join(flags)})"))
    return lines


def _source(volume: Mapping[str, Any]) -> list[Line]:
    """The lines kubectl prints for one volume's source (``<unknown>`` for a type it lacks)."""
    if "emptyDir" in volume:
        empty = volume.get("emptyDir") or {}
        limit = str(empty.get("sizeLimit") or "")
        return [
            (2, "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)"),
            (2, f"Medium:\t{empty.get('medium') or ''}"),
            (2, f"SizeLimit:\t{limit if limit not in ('', '0') else '<unset>'}"),
        ]
    if "hostPath" in volume:
        host = volume.get("hostPath") or {}
        return [
            (2, "Type:\tHostPath (bare host directory volume)"),
            (2, f"Path:\t{host.get('path', '')}"),
            (2, f"HostPathType:\t{host.get('type', EMPTY)}"),
        ]
    if "configMap" in volume:
        config = volume.get("configMap") or {}
        return [
            (2, "Type:\tConfigMap (a volume populated by a ConfigMap)"),
            (2, f"Name:\t{config.get('name', '')}"),
            (2, f"Optional:\t{'true' if config.get('optional') else 'false'}"),
        ]
    if "secret" in volume:
        secret = volume.get("secret") or {}
        return [
            (2, "Type:\tSecret (a volume populated by a Secret)"),
            (2, f"SecretName:\t{secret.get('secretName', '')}"),
            (2, f"Optional:\t{'true' if secret.get('optional') else 'false'}"),
        ]
    return [(1, "<unknown>")]


def volumes(declared: Sequence[Mapping[str, Any]]) -> list[Line]:
    """``Volumes:`` then each volume's name and source, or ``Volumes: <none>``."""
    if not declared:
        return [(0, f"Volumes:\t{EMPTY}")]
    lines: list[Line] = [(0, "Volumes:")]
    for volume in declared:
        lines += [(1, f"{volume.get('name')}:"), *_source(volume)]
    return lines
