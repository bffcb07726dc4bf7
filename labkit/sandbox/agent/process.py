"""The agent process's entry point: ``python -m labkit.sandbox.agent --state-dir DIR``.

Logs to the state directory, refuses to run twice for one lab, optionally detaches (``start_agent``
asks for that), keeps the pid file, and runs the ``Agent`` loop until told to stop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

from labkit.sandbox.agent.client import AGENT_MODULE, answers_ping
from labkit.sandbox.agent.files import LOG_FILE, remove_own_pid, write_pid
from labkit.sandbox.agent.server import Agent

log = logging.getLogger("labkit.agent")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the agent process; returns its exit status."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {AGENT_MODULE}",
        description="Serve a sandbox lab's pods (one process per lab).",
    )
    parser.add_argument(
        "--state-dir", required=True, help="the lab's state directory, /run/labkit/<lab_name>"
    )
    parser.add_argument(
        "--daemonize",
        action="store_true",
        help="fork once and let the parent exit at once (used by start_agent)",
    )
    args = parser.parse_args(argv)
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    logging.basicConfig(
        filename=os.path.join(state_dir, LOG_FILE),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    if answers_ping(state_dir):
        log.error("another agent already serves %s; this one (%d) exits", state_dir, os.getpid())
        return 1
    if args.daemonize:
        child = os.fork()
        if child > 0:
            # Written before the launcher exits, so start_agent can tell "died" from
            # "not yet started".
            write_pid(state_dir, child)
            os._exit(0)
    write_pid(state_dir, os.getpid())
    try:
        asyncio.run(Agent(state_dir).run())
    except Exception:
        log.exception("agent crashed")
        return 1
    finally:
        remove_own_pid(state_dir)
    return 0
