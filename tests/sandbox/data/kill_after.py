"""Run ``labkit ARGS...`` in this process and ``kill -9`` it right after its Nth action.

Usage: ``python kill_after.py N ARGS...``. An action is a finished subprocess (``ip``,
``iptables-restore``), state write (a journal line, or the whole state: one action either way,
so the count does not depend on when the journal is folded), file replacement (intent,
workloads.json, /etc/netns files) or agent reload; the kill lands between two of them,
wherever they run. With N = 0 nothing is killed and the actions are printed on stderr after
labkit's own output, one per line, then their count.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from labkit import cli
from labkit.sandbox.agent import client
from labkit.sandbox.state import JOURNAL_FILE, STATE_FILE, StateFile

kill_at = int(sys.argv[1])
actions: list[str] = []
guard = threading.Lock()


def done(what: str) -> None:
    with guard:
        actions.append(what)
        if len(actions) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


real_run, real_replace, real_command = subprocess.run, os.replace, client.agent_command
real_write = StateFile.write


def run(*args, **kwargs):
    result = real_run(*args, **kwargs)
    done("run " + " ".join(map(str, args[0][:4])))
    return result


def replace(src, dst):
    real_replace(src, dst)
    if os.path.basename(dst) not in (STATE_FILE, JOURNAL_FILE):
        done(f"replace {dst}")


def write(self, data):
    real_write(self, data)
    done(f"write {self.path}")


def command(state_dir, cmd, timeout=10.0):
    answer = real_command(state_dir, cmd, timeout)
    if cmd != "ping":
        done(f"agent {cmd}")
    return answer


subprocess.run, os.replace, client.agent_command = run, replace, command
StateFile.write = write
code = cli.main(sys.argv[2:])
print("\n".join([*actions, str(len(actions))]), file=sys.stderr)
sys.exit(code)
