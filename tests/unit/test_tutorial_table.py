"""The table of the tutorial's `kubectl` commands (tests/sandbox/data/tutorial_commands.yaml),
which tests/sandbox/test_tutorial_commands.py replays on a lab, is consistent on its own: one
entry per tutorial line, each verbatim, mapped with a reason or refused in one line, every
command it runs parsed by labkit's kubectl parsers, every pattern a valid regular expression."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from labkit.kubectl import apply, args, create, expose, flags, patch, podexec, podlogs, podrun
from labkit.kubectl.sources import files

TABLE: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parents[1] / "sandbox" / "data" / "tutorial_commands.yaml").read_text()
)
COMMANDS = 39  # `grep -n "kubectl " tutorial.md`: 41 lines, less two prose bullets (1223, 1224)
FIELD = re.compile(r"\{([a-z_]+)\}")
FIELDS = {  # what the sandbox test fills in from the lab (names and addresses of its kind)
    "nginx_ip": "192.168.20.2",
    "nginx_svc_ip": "10.96.0.20",
    "payment_ip": "192.168.30.7",
    "kube_proxy": "kube-proxy-abcde",
    "kube_proxy_node_ip": "172.18.0.3",
    "postgres_pod": "postgres-6b4f87b5c9-8p7x2",
}
EXPECT_KEYS = {"code", "header", "shows", "stderr", "stderr_starts", "yaml"}
POD_VERBS = {"exec": podexec, "logs": podlogs, "run": podrun}
WRITE_TABLES = {"apply": apply.TABLE, "expose": expose.TABLE, "patch": patch.TABLE}
IDS = [f"line{e['line']}" for e in TABLE]


def filled(text: str) -> str:
    return FIELD.sub(lambda m: FIELDS[m[1]], text)


def typed(entry: dict[str, Any]) -> str:
    """The tutorial's command as one line, without `kubectl` (and a leading `# `)."""
    return entry["tutorial"].removeprefix("# ").removeprefix("kubectl ").replace(" \\ ", " ")


def parses(argv: list[str]) -> None:
    """Parse a command line with the parser of its verb (a KubectlError fails the test)."""
    at = args.verb_index(argv)
    assert at is not None, argv
    verb, rest = argv[at], [*argv[:at], *argv[at + 1 :]]
    if verb in args.READ_VERBS:
        args.parse(argv)
    elif verb in POD_VERBS:
        module = POD_VERBS[verb]
        flags.parse(verb, rest, module.FLAGS, module.HELP, module.UNSERVED)
    elif verb == "create":
        assert rest[0] == "namespace", argv
        flags.parse("create namespace", rest[1:], create.NAMESPACE_TABLE, "")
    else:
        flags.parse(verb, rest, WRITE_TABLES[verb], "")


def test_the_table_has_one_entry_per_tutorial_command_in_the_tutorials_order():
    lines = [e["line"] for e in TABLE]
    assert len(lines) == COMMANDS
    assert lines == sorted(set(lines))


@pytest.mark.parametrize("entry", TABLE, ids=IDS)
def test_each_entry_is_verbatim_or_says_why_not(entry):
    assert entry["tutorial"].startswith(("kubectl ", "# kubectl "))
    assert entry["way"] in ("verbatim", "mapped", "refused")
    assert entry["terminal"] in ("plain", "pty", "shell")
    if entry["way"] == "verbatim":
        assert entry["run"] == typed(entry)
    else:
        assert entry["note"].strip()
    if entry["way"] == "mapped":
        assert entry["run"] != typed(entry)
    expect = entry["expect"]
    assert set(expect) <= EXPECT_KEYS and isinstance(expect["code"], int)
    if entry["terminal"] != "plain":  # a terminal brings stdout and stderr together
        assert not {"header", "stderr", "stderr_starts", "yaml"} & set(expect)
    if entry["way"] == "refused":
        assert expect["code"] == 1 and entry["terminal"] == "plain"
        refusal = expect.get("stderr") or expect["stderr_starts"]
        assert len(refusal.rstrip("\n").splitlines()) == 1


@pytest.mark.parametrize("entry", TABLE, ids=IDS)
def test_each_command_parses_and_each_pattern_compiles(entry):
    for command in (entry["run"], entry.get("before")):
        if command is not None:
            assert set(FIELD.findall(command)) <= set(FIELDS)
            parses(shlex.split(filled(command)))
    for pattern in entry["expect"].get("shows", []):
        assert set(FIELD.findall(pattern)) <= set(FIELDS)
        re.compile(filled(pattern))


def test_a_url_for_f_is_refused_with_the_tables_line():
    entry = next(e for e in TABLE if "https://" in e["run"])
    url = shlex.split(entry["run"])[-1]
    with pytest.raises(args.KubectlError) as refused:
        files(url)
    assert refused.value.text + "\n" == entry["expect"]["stderr"]
