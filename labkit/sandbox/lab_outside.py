"""Address ranges a sandbox lab's outside namespace answers on (a payment gateway's range, a
public client): ``add_outside_address`` and ``remove_outside_address`` change the outside's
addresses and the ports it serves there, recorded in the lab's state and served by the agent."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from typing import Any

from labkit import inputs
from labkit.errors import LabError
from labkit.sandbox import fabric, fabric_runner, naming
from labkit.sandbox.dataplane import StoreView
from labkit.sandbox.lab_state import LabState
from labkit.sandbox.state import begin_change, built_pods, end_change


class OutsideAddresses(LabState):
    """The part of a sandbox lab that changes the outside's addresses."""

    def outside_addresses(self) -> list[str]:
        """Ranges that answer in the outside namespace (besides the gateway 172.18.0.1)."""
        return list((self._state().get("outside") or {}).get("addresses") or [])

    def add_outside_address(self, cidr: str, ports: Iterable[int | tuple[int, str]] = ()) -> None:
        """Give the outside namespace a whole address range (e.g. a payment gateway's
        ``192.168.5.0/24``) and, optionally, ports it serves there like netexec (``served_by`` is
        ``outside``). Pods reach it through their node's default route, as they would reach an
        external service; nothing leaves the lab."""
        self._change_outside(cidr, present=True, ports=ports)

    def remove_outside_address(self, cidr: str) -> None:
        """Take an address range added with ``add_outside_address`` away again."""
        self._change_outside(cidr, present=False, ports=())

    def _change_outside(
        self, cidr: str, present: bool, ports: Iterable[int | tuple[int, str]]
    ) -> None:
        try:
            network = str(ipaddress.ip_network(cidr, strict=False))
            lines = fabric.outside_address_lines(network, present)
        except (TypeError, ValueError) as exc:
            raise LabError(
                f"{inputs.shown(cidr)} is not an IPv4 address or range ({exc}).",
                "Give an address like 203.0.113.10 or a range like 198.51.100.0/24.",
            ) from None
        pod_cidrs = [n.pod_cidr for n in self._store().nodes()]
        problem = fabric.outside_range_problem(network, self.cni, pod_cidrs) if present else None
        if problem is not None:
            raise LabError(
                f"The outside cannot take {network}: {problem}.",
                "Use a range the cluster does not use, such as 203.0.113.0/24 or 198.51.100.0/24.",
            )
        served_ports = [_served_port(p) for p in ports]
        with self._writing():
            self._heal_locked()
            state = dict(self._state())
            outside = dict(state.get("outside") or {"addresses": [], "ports": []})
            addresses = [a for a in outside.get("addresses") or [] if a != network]
            if present:
                addresses.append(network)
                served = list(outside.get("ports") or [])
                for entry in served_ports:
                    if entry not in served:
                        served.append(entry)
                outside["ports"] = served
            elif network not in (outside.get("addresses") or []):
                raise LabError(
                    f"{network} is not one of the outside addresses of lab {self.name!r}.",
                    f"Remove one that is there: {', '.join(outside['addresses'])}."
                    if outside.get("addresses")
                    else "Nothing needs removing: no outside address was added to this lab.",
                )
            outside["addresses"] = addresses
            begin_change(self.state_dir, ())
            fabric_runner.run_stages(
                [[fabric.Job(naming.outside_netns(self.name)).ip(*lines)]],
                f"{'add' if present else 'remove'} outside address {network}",
            )
            state["outside"] = outside
            store = self._store()
            self._state_file.write({**state, "updated": time.time()})
            self._cache = None
            self._dataplane.publish(StoreView(store), built_pods(state), outside)
            end_change(self.state_dir)


def _served_port(item: object) -> dict[str, Any]:
    """A port the outside serves, as the agent lists it: a number is TCP."""
    if isinstance(item, (tuple, list)) and len(item) == 2:
        port, protocol = item
    else:
        port, protocol = item, "TCP"
    return {
        "port": inputs.check_port(port, "an outside port"),
        "protocol": inputs.check_protocol(protocol),
    }
