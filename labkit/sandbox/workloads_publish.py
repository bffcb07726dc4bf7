"""Handing the agent a new ``workloads.json``: the file replaced in one step, the agent asked to
reload it, and its answer taken later (``Reload.wait``), so a change loads its rules meanwhile
(issue 18). An agent that died is started again and asked once more."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from labkit.errors import LabError
from labkit.sandbox.agent.files import SPEC_FILE

AGENT_RELOAD_TIMEOUT_S = 15.0


class Reload:
    """A workloads document published (its text), and the agent's reload of it (when one was
    asked for): ``wait()`` takes the agent's answer, once."""

    def __init__(self, text: str, answer: Callable[[], None] | None = None) -> None:
        self.text = text
        self._answer = answer

    def wait(self) -> None:
        """Return once the agent serves the document; a LabError when it could not."""
        answer, self._answer = self._answer, None
        if answer is not None:
            answer()


class Publisher:
    """One lab's ``workloads.json`` and what this process last had its agent load."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._served: str | None = None
        """The workloads.json text the agent last loaded at this process's request."""

    def send(self, text: str, previous: str | None = None) -> Reload:
        """Write ``text`` as workloads.json and ask the agent to serve exactly that (nothing is
        sent when it equals ``previous``, or when this process last had the agent load this very
        text and the file still holds it); the reload's ``wait()`` raises a LabError with the
        agent's answer when it could not serve every pod port."""
        path = self.state_dir / SPEC_FILE
        if text == previous or (
            text == self._served and path.exists() and path.read_text() == text
        ):
            return Reload(text)
        self._served = None
        tmp = path.with_name(f".{SPEC_FILE}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        answer = ask_reload(str(self.state_dir))

        def served() -> None:
            reply = answer()
            if not reply.startswith("ok"):
                raise LabError(
                    "The workload agent could not serve every pod port.",
                    "Check that no two containers of a pod declare the same port, then apply "
                    "again.",
                    output=reply,
                )
            self._served = text

        return Reload(text, served)


def ask_reload(directory: str) -> Callable[[], str]:
    """Ask the agent of the lab in ``directory`` to re-read workloads.json; returns what waits
    for its answer."""
    from labkit.sandbox.agent.client import AgentRequest, agent_command, start_agent

    try:
        request = AgentRequest(directory, "reload", AGENT_RELOAD_TIMEOUT_S)
    except LabError:
        # The agent died (killed, or the machine ran out of memory): start a new one, which
        # reads workloads.json as it starts, and ask again.
        start_agent(directory)
        return AgentRequest(directory, "reload", AGENT_RELOAD_TIMEOUT_S).answer

    def answer() -> str:
        try:
            return request.answer()
        except LabError:  # it died while reloading: as above
            start_agent(directory)
            return agent_command(directory, "reload", timeout=AGENT_RELOAD_TIMEOUT_S)

    return answer
