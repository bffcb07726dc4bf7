"""``kubectl scale --replicas=N TYPE NAME`` served on a Lab, for the types with a scale
subresource the sandbox runs (deployments, replicasets, statefulsets): the live object with its
new ``spec.replicas``, applied through the Lab seam, so the controllers add or remove pods."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from labkit.kubectl import flags, writes
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.outcome import Outcome
from labkit.lab import Lab

TABLE = (flags.NAMESPACE, flags.Flag("--replicas"))
SHAPE = "--replicas=COUNT TYPE NAME... | TYPE/NAME... [-n NAMESPACE]"
SCALABLE = ("Deployment", "ReplicaSet", "StatefulSet")


def replicas(value: str) -> int:
    """``--replicas`` as kubectl reads it: an integer, 0 or more."""
    try:
        count = int(value, 10)
    except ValueError:
        raise KubectlError(
            f'error: invalid argument "{value}" for "--replicas" flag: strconv.ParseInt: '
            f'parsing "{value}": invalid syntax\n{flags.flag_usage("scale")}'
        ) from None
    if count < 0:
        raise KubectlError(
            "error: The --replicas=COUNT flag is required, and COUNT must be greater than or "
            "equal to 0"
        )
    return count


def scale(lab: Lab, argv: Sequence[str], stdin: Callable[[], str]) -> Outcome:
    """What ``kubectl scale`` prints on this lab, and its exit code."""
    parsed = flags.parse("scale", argv, TABLE, flags.served_help("scale", SHAPE, TABLE))
    count = replicas(parsed.last("--replicas", "-1"))
    chosen = writes.targets(parsed.words)
    if not chosen:
        raise KubectlError(
            "error: required resource not specified\nSee 'kubectl scale -h' for help and examples"
        )
    namespace = parsed.last("--namespace", "default")
    docs, lines = [], []
    for resource, name in chosen:
        if resource.kind not in SCALABLE:
            raise KubectlError(
                "Error from server (NotFound): the server could not find the requested resource"
            )
        doc = writes.manifest_of(writes.must_exist(lab, resource, name, namespace))
        doc["spec"]["replicas"] = count
        docs.append(doc)
        lines.append(f"{writes.named(resource, name)} scaled\n")
    writes.write(lab, docs, namespace)
    return Outcome("".join(lines), "", 0)
