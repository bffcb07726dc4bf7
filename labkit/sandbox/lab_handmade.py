"""Network namespaces a learner makes by hand on a sandbox node (``ip netns add`` there): the
Lab seam's ``netns_add``, ``netns_delete``, ``netns_list`` and ``netns_exec``, recorded in the
lab's state by node (:mod:`labkit.sandbox.handmade` makes and removes them)."""

from __future__ import annotations

from collections.abc import Sequence

from labkit import inputs
from labkit.errors import LabError
from labkit.sandbox import handmade, naming
from labkit.sandbox.confine import Confinement, command_argv
from labkit.sandbox.fabric import NodeNet
from labkit.sandbox.lab_state import LabState
from labkit.values import ExecResult


class HandMadeNetns(LabState):
    """The part of a sandbox lab that serves namespaces made by hand on its nodes."""

    def netns_add(self, node: str, name: str) -> None:
        """Create an empty network namespace on a node, as ``ip netns add NAME`` there does."""
        name, n = inputs.check_hand_netns(name), self._node(node)
        with self._writing():
            self._heal_locked()
            made = handmade.recorded(self._state())
            if name in made.get(n.name, []):
                raise LabError(
                    f"Node {n.name} already has a network namespace {name!r}.",
                    f"Remove it first with lab.netns_delete({n.name!r}, {name!r}), or pick "
                    "another name.",
                )
            handmade.create(naming.hand_netns(self.name, n.short, name))
            self._record_hand({**made, n.name: sorted([*made.get(n.name, []), name])})

    def netns_delete(self, node: str, name: str) -> None:
        """Remove a namespace made by hand (its veth ends go with it); none there is fine."""
        name, n = inputs.check_hand_netns(name), self._node(node)
        with self._writing():
            self._heal_locked()
            made = handmade.recorded(self._state())
            if name in made.get(n.name, []):
                handmade.remove([naming.hand_netns(self.name, n.short, name)])
                self._record_hand({**made, n.name: [m for m in made[n.name] if m != name]})

    def netns_list(self, node: str) -> list[str]:
        """The namespaces made by hand on a node (what ``ip netns list`` shows there)."""
        n = self._node(node)
        self.heal()
        return handmade.recorded(self._state()).get(n.name, [])

    def netns_exec(
        self, node: str, name: str, command: str | Sequence[str], timeout: float = 10.0
    ) -> ExecResult:
        """Run a command in a namespace made by hand on a node, as ``ip netns exec NAME`` there
        would, confined like a pod's shell with the node's hostname."""
        from labkit.sandbox.netns import run_confined

        timeout = inputs.check_timeout(timeout)
        n, netns = self._hand_netns(node, name)
        return run_confined(netns, Confinement(n.name), command_argv(command), timeout)

    def _hand_netns(self, node: str, name: str) -> tuple[NodeNet, str]:
        """A node and the lab namespace of its hand-made namespace ``name``, which must exist."""
        name, n = inputs.check_hand_netns(name), self._node(node)
        self.heal()
        if name not in handmade.recorded(self._state()).get(n.name, []):
            raise LabError(
                f"Node {n.name} has no network namespace {name!r}.",
                f"Create it with lab.netns_add({n.name!r}, {name!r}).",
            )
        return n, naming.hand_netns(self.name, n.short, name)
