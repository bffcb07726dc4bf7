"""A Kind lab's objects through the Kubernetes API: the client built from the lab's own
kubeconfig, and the seam's apply (validated, dry-run first, server-side), get and delete."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import (
    NotFoundError,
    ResourceNotFoundError,
    ResourceNotUniqueError,
)

from labkit import inputs, manifests
from labkit.errors import LabError
from labkit.kind import crds, readiness
from labkit.kind.discovery import InMemoryDiscoverer
from labkit.values import ObjectRef

FIELD_MANAGER = "labkit"
DELETE_WAIT_S = 120.0
"""How long `delete` waits for its objects to be gone (a Pod's grace period is 30 s)."""
CRD_WAIT_S = 60.0
"""How long `apply` waits for a batch's CRDs to be Established and their kinds served."""
POLL_S = 0.5


# --------------------------------------------------------------------------- pure helpers


def selector_string(selector: str | Mapping[str, Any] | None) -> str | None:
    """A label selector as the API's query string ("a=b,c!=d"), from a string, a map, or a
    LabelSelector."""
    if selector is None or isinstance(selector, str):
        return selector or None
    if "matchLabels" in selector or "matchExpressions" in selector:
        parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
        for expr in selector.get("matchExpressions") or []:
            key, op, values = expr["key"], expr["operator"], expr.get("values") or []
            if op == "In":
                parts.append(f"{key} in ({','.join(values)})")
            elif op == "NotIn":
                parts.append(f"{key} notin ({','.join(values)})")
            elif op == "Exists":
                parts.append(key)
            elif op == "DoesNotExist":
                parts.append(f"!{key}")
            else:
                raise LabError(
                    f"Unknown selector operator {op!r}.", "Use In, NotIn, Exists or DoesNotExist."
                )
        return ",".join(parts) or None
    return ",".join(f"{k}={v}" for k, v in selector.items()) or None


def apply_order(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Namespaces and CRDs first, so the objects that live in them can be created in one batch."""
    first = {"Namespace": 0, "CustomResourceDefinition": 1}
    return sorted(docs, key=lambda d: first.get(str(d.get("kind")), 2))


def with_namespace(
    docs: Sequence[dict[str, Any]],
    namespace: str | None,
    custom: Mapping[crds.KindKey, bool] | None = None,
) -> list[dict[str, Any]]:
    """Fill in the namespace of namespaced objects that do not name one (``namespace``, or
    default); ``custom`` says which kinds a batch's CRDs define are namespaced."""
    out = []
    for doc in docs:
        filled = dict(doc)
        meta = filled.get("metadata") or {}
        key = crds.key_of(filled)
        namespaced = (
            custom[key]
            if custom and key in custom
            else manifests.is_namespaced(str(filled.get("kind", "")))
        )
        if namespaced and not meta.get("namespace"):
            filled["metadata"] = {**meta, "namespace": namespace or "default"}
        out.append(filled)
    return out


def api_reason(exc: ApiException) -> str:
    """The API server's own message in a refusal (its Status body), else the HTTP reason."""
    try:
        return str(json.loads(exc.body or "").get("message") or exc.reason)
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason or exc)


class DeleteTarget(NamedTuple):
    """One object `delete` removes; ``api_version`` is None when an ObjectRef named it."""

    kind: str
    api_version: str | None
    name: str
    namespace: str | None


def delete_order(targets: Sequence[DeleteTarget]) -> list[DeleteTarget]:
    """Namespaces (and CRDs) after what lives in them."""
    last = {"Namespace": 2, "CustomResourceDefinition": 1}
    return sorted(targets, key=lambda t: last.get(t.kind, 0))


def poll_until(
    pending: Callable[[], list[str]],
    timeout_s: float,
    interval_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Call ``pending`` until it returns nothing or ``timeout_s`` has passed; returns its last
    answer (empty: done), so a caller can name what never finished."""
    deadline = clock() + timeout_s
    while True:
        left = pending()
        if not left or clock() >= deadline:
            return left
        sleep(interval_s)


class Deleted(NamedTuple):
    """An object a delete was accepted for, still to disappear; ``uid`` tells it from a new
    object of the same name."""

    resource: Any
    target: DeleteTarget
    uid: str


# --------------------------------------------------------------------------- the objects


class KindObjects:
    """One Kind lab's API: its client, and the objects in it as plain dicts."""

    def __init__(self, lab_name: str, kubeconfig: dict[str, Any]) -> None:
        self.lab_name = lab_name
        self.configuration = k8s.Configuration()
        load_kubeconfig: Any = k8s_config.load_kube_config_from_dict  # unannotated upstream
        load_kubeconfig(kubeconfig, client_configuration=self.configuration, persist_config=False)
        self.client = k8s.ApiClient(self.configuration)
        self._dynamic: Any = None
        self._lock = threading.Lock()

    def core(self, own_client: bool = False) -> k8s.CoreV1Api:
        """The core API on the shared client, or on a client of its own (an exec stream swaps its
        client's transport while it runs)."""
        return k8s.CoreV1Api(k8s.ApiClient(self.configuration) if own_client else self.client)

    @property
    def dynamic(self) -> Any:
        """The dynamic client (discovery runs once, on first use)."""
        with self._lock:
            if self._dynamic is None:
                make_client: Any = DynamicClient  # unannotated upstream
                try:
                    self._dynamic = make_client(self.client, discoverer=InMemoryDiscoverer)
                except Exception as exc:
                    raise LabError(
                        f"Cannot reach the API server of Kind lab {self.lab_name!r}: {exc}",
                        f"Check that the lab runs (`kind get clusters`, `docker ps`); "
                        f"`labkit down --name {self.lab_name}` and "
                        f"`labkit up --name {self.lab_name} --backend kind` recreate it.",
                    ) from None
            return self._dynamic

    def resource(self, kind: str, api_version: str | None = None) -> Any:
        """The API resource for a kind spelled as kubectl accepts it (or a Kind + apiVersion)."""
        try:
            if api_version:
                return self.dynamic.resources.get(api_version=api_version, kind=kind)
            try:
                canonical = manifests.canonical_kind(kind)
            except LabError:
                return self._discover(kind)
            return self.dynamic.resources.get(
                api_version=manifests.api_version_of(canonical), kind=canonical
            )
        except (ResourceNotFoundError, ResourceNotUniqueError):
            served = f" in {api_version}" if api_version else ""
            raise LabError(
                f"This cluster serves no kind {kind!r}{served}.",
                "Check the spelling (`kubectl api-resources` lists what exists); custom kinds need "
                "their CRD installed first.",
            ) from None

    def _discover(self, spelling: str) -> Any:
        """A kind labkit does not list (a CRD such as TigeraStatus): match its kind, plural,
        singular or short name."""
        wanted = spelling.strip().lower()
        found = self._search(wanted)
        if found is None:  # a CRD applied since discovery ran (maybe by another process)
            self.dynamic.resources.invalidate_cache()
            found = self._search(wanted)
        if found is None:
            raise ResourceNotFoundError(spelling)
        return found

    def _search(self, wanted: str) -> Any:
        """The discovered resource whose kind, plural, singular or short name is ``wanted``."""
        for resource in self.dynamic.resources.search():
            if getattr(resource, "subresource", None) or "/" in (
                getattr(resource, "name", "") or "/"
            ):
                continue
            names = {
                str(resource.kind).lower(),
                str(resource.name).lower(),
                str(getattr(resource, "singular_name", "") or "").lower(),
                *[str(s).lower() for s in getattr(resource, "short_names", None) or []],
            }
            if wanted in names:
                return resource
        return None

    @staticmethod
    def _plain(obj: Any, kind: str, api_version: str) -> dict[str, Any]:
        data: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
        data.setdefault("apiVersion", api_version)
        data.setdefault("kind", kind)
        return data

    def apply(self, manifests_source: Any, namespace: str | None = None) -> list[ObjectRef]:
        """Validate every document, dry-run them all on the server, then server-side apply them.
        Resources of a kind the batch's own CRDs define follow once those CRDs are Established
        and their kind is served."""
        loaded = manifests.load(manifests_source)
        custom = crds.defined_kinds(loaded)
        docs = apply_order(with_namespace(loaded, namespace, custom))
        now, later = crds.split(docs, custom)
        manifests.validate(now)
        crds.check_names(later)
        refs = self._apply_batch(now, [])
        if later:
            self._wait_established(crds.crd_names(now), later)
            refs += self._apply_batch(later, refs)
        return refs

    def _apply_batch(self, docs: list[dict[str, Any]], done: list[ObjectRef]) -> list[ObjectRef]:
        """Dry-run every document on the server, then apply them in order; ``done`` names what
        this apply already changed, for the error."""
        created_namespaces = {d["metadata"]["name"] for d in docs if d.get("kind") == "Namespace"}
        resources = [self.resource(d["kind"], d["apiVersion"]) for d in docs]
        namespaces = [
            manifests.namespace_of(d) if r.namespaced else None
            for d, r in zip(docs, resources, strict=True)
        ]
        problems = []
        for doc, resource, ns in zip(docs, resources, namespaces, strict=True):
            try:
                resource.server_side_apply(
                    body=doc,
                    namespace=ns,
                    field_manager=FIELD_MANAGER,
                    force_conflicts=True,
                    dry_run="All",
                )
            except ApiException as exc:
                if exc.status == 404 and ns in created_namespaces:
                    continue  # its namespace is created by this same batch
                problems.append(f"{manifests.describe(doc)}: {api_reason(exc)}")
        if problems:
            applied = f" (already applied: {', '.join(str(r) for r in done)})" if done else ""
            raise LabError(
                "The API server refused these objects, so nothing "
                + ("more " if done else "")
                + "was applied"
                + applied
                + ":\n  - "
                + "\n  - ".join(problems),
                "Fix the fields named above and apply again.",
            )
        refs: list[ObjectRef] = []
        for doc, resource, ns in zip(docs, resources, namespaces, strict=True):
            try:
                resource.server_side_apply(
                    body=doc, namespace=ns, field_manager=FIELD_MANAGER, force_conflicts=True
                )
            except ApiException as exc:
                applied = ", ".join(str(r) for r in [*done, *refs]) or "none"
                raise LabError(
                    f"The API server rejected {manifests.describe(doc)}: {api_reason(exc)}",
                    f"Fix it and apply again (already applied: {applied}).",
                ) from None
            refs.append(ObjectRef(doc["kind"], doc["metadata"]["name"], ns))
        return refs

    def _wait_established(self, names: list[str], docs: list[dict[str, Any]]) -> None:
        """Wait until the CRDs ``names`` are Established and the kinds of ``docs`` are served."""

        definitions = self.resource(crds.CRD_KIND, crds.CRD_API_VERSION)

        def pending() -> list[str]:
            listed = definitions.get().to_dict().get("items") or []
            left = readiness.conditions_pending(listed, "crd", names, "Established")
            for api_version, kind in dict.fromkeys(crds.key_of(d) for d in docs):
                try:
                    self.resource(kind, api_version)
                except LabError:
                    left.append(f"kind {kind} in {api_version} not served yet")
            return left

        left = poll_until(pending, CRD_WAIT_S, POLL_S)
        if left:
            raise LabError(
                f"Waited {CRD_WAIT_S:.0f} s for this batch's CRDs, and " + "; ".join(left) + ".",
                f"Look at `kubectl get crd {' '.join(names)} -o yaml` (status.conditions), "
                "then apply again.",
            )

    def get(
        self,
        kind: str,
        name: str | None = None,
        namespace: str | None = "default",
        selector: str | Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Objects as plain dicts in the Kubernetes JSON shape; ``namespace=None`` means all
        namespaces."""
        inputs.check_ref(name, namespace)
        resource = self.resource(kind)
        ns = namespace if resource.namespaced else None
        try:
            if name and (ns or not resource.namespaced):
                found = resource.get(name=name, namespace=ns)
                return [self._plain(found, resource.kind, resource.group_version)]
            listed = resource.get(
                namespace=ns,
                label_selector=selector_string(selector),
                field_selector=f"metadata.name={name}" if name else None,
            )
        except NotFoundError:
            return []
        except ApiException as exc:
            raise LabError(
                f"Listing {kind} failed: {api_reason(exc)}",
                f"Check that the lab is running (`labkit status --name {self.lab_name}`).",
            ) from None
        items = listed.to_dict().get("items") or []
        return [self._plain(i, resource.kind, resource.group_version) for i in items]

    def delete(self, manifests_or_refs: Any) -> None:
        """Delete objects named by ObjectRefs or by manifests (objects already gone are fine), as
        `kubectl delete --cascade=foreground` does, and return once they are gone: a Pod still
        terminating would swallow an apply of the same name."""
        items = (
            [manifests_or_refs] if isinstance(manifests_or_refs, ObjectRef) else manifests_or_refs
        )
        if (
            isinstance(items, (list, tuple))
            and items
            and all(isinstance(i, ObjectRef) for i in items)
        ):
            targets = [DeleteTarget(r.kind, None, r.name, r.namespace) for r in items]
        else:
            targets = [
                DeleteTarget(
                    doc["kind"],
                    doc.get("apiVersion"),
                    doc["metadata"]["name"],
                    manifests.namespace_of(doc),
                )
                for doc in with_namespace(manifests.load(items), None)
            ]
        for target in targets:
            inputs.check_ref(target.name, target.namespace)
        accepted: list[Deleted] = []
        for target in delete_order(targets):
            resource = self.resource(target.kind, target.api_version)
            try:
                reply = resource.delete(
                    name=target.name,
                    namespace=target.namespace if resource.namespaced else None,
                    propagation_policy="Foreground",
                )
            except NotFoundError:
                continue
            except ApiException as exc:
                raise LabError(
                    f"Deleting {target.kind}/{target.name} failed: {api_reason(exc)}",
                    "Check the name and namespace, then try again.",
                ) from None
            uid = _uid(reply)
            if uid:  # a Status reply: the object went at once
                accepted.append(Deleted(resource, target, uid))
        self._wait_gone(accepted)

    def _wait_gone(self, accepted: list[Deleted]) -> None:
        """Wait until every object a delete was accepted for is gone (or replaced by a new one of
        that name)."""

        def pending() -> list[str]:
            left = []
            for item in accepted:
                ns = item.target.namespace if item.resource.namespaced else None
                try:
                    found = item.resource.get(name=item.target.name, namespace=ns)
                except NotFoundError:
                    continue
                if _uid(found) == item.uid:
                    shown = f"{ns}/{item.target.name}" if ns else item.target.name
                    left.append(f"{item.target.kind} {shown}")
            return left

        left = poll_until(pending, DELETE_WAIT_S, POLL_S)
        if left:
            raise LabError(
                f"Still terminating after {DELETE_WAIT_S:.0f} s: {', '.join(left)}.",
                "Wait until `kubectl get` no longer lists them (a finalizer or a stuck node can "
                "hold them: `kubectl get <kind> <name> -o yaml` shows metadata.finalizers), then "
                "try again.",
            )


def _uid(reply: Any) -> str:
    """The uid of an object the API returned ("" for a Status, which has none)."""
    data = reply.to_dict() if hasattr(reply, "to_dict") else dict(reply or {})
    if data.get("kind") == "Status":
        return ""
    return str((data.get("metadata") or {}).get("uid") or "")
