"""``kubectl get`` served from a Lab: tables (``-o wide``, ``-A``, ``--show-labels``,
``--no-headers``, several types at once), ``-o yaml|json|name|jsonpath=...``."""

from __future__ import annotations

from datetime import datetime

from labkit.kubectl import output
from labkit.kubectl.args import Request
from labkit.kubectl.fetch import gather, nothing_found
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.outcome import Outcome
from labkit.lab import Lab
from labkit.printers import jsonpath
from labkit.printers.columns import TableOptions, table


def get(lab: Lab, request: Request, now: datetime) -> Outcome:
    """What ``kubectl get`` prints for ``request`` on this lab, and its exit code."""
    found = gather(lab, request)
    errors = [*found.warnings, *found.missing]
    groups = [(r, objs) for r, objs in found.groups if objs]
    everything = [obj for _, objs in groups for obj in objs]
    single = (
        len(request.targets) == 1 and len(request.targets[0][1]) == 1 and not request.everything
    )
    structured = request.output in ("yaml", "json", "jsonpath")
    stdout = ""
    if structured and (everything or not found.missing):
        data = everything[0] if single and everything else output.as_list(everything)
        if request.output == "yaml":
            stdout = output.to_yaml(data)
        elif request.output == "json":
            stdout = output.to_json(data)
        else:
            try:
                stdout = jsonpath.render(request.template, data)
            except jsonpath.JsonPathError as exc:
                raise KubectlError(str(exc)) from None
    elif request.output == "name":
        stdout = "".join(
            f"{r.qualified}/{o['metadata']['name']}\n" for r, objs in groups for o in objs
        )
    elif groups:
        several = len(request.targets) > 1 or request.everything
        tables = [
            table(
                resource.kind,
                objs,
                now,
                TableOptions(
                    wide=request.output == "wide",
                    namespace_column=request.all_namespaces and resource.namespaced,
                    show_labels=request.show_labels,
                    no_headers=request.no_headers,
                    name_prefix=f"{resource.qualified}/" if several else "",
                ),
            )
            for resource, objs in groups
        ]
        stdout = "\n\n".join(tables) + "\n"
    if not everything and not found.missing and not structured:
        errors.append(nothing_found(request))
    return Outcome(stdout, "".join(f"{e}\n" for e in errors), 1 if found.missing else 0)
