"""Workload documents unit tests share."""

from __future__ import annotations

from typing import Any


def deployment(ns: str, name: str, replicas: int, group: str) -> dict[str, Any]:
    """A Deployment of agnhost netexec pods labelled ``app: name`` and ``group``."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "group": group}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
                            "args": ["netexec", "--http-port=8080"],
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ]
                },
            },
        },
    }
