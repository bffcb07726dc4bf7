"""A lab per learner: the roster, `labkit class up|down`, `labkit ls` and `labkit down --all`,
over fake backends (no root, no namespaces)."""

from __future__ import annotations

import re
import threading

import pytest

from labkit import classroom, cli, lablist, roster
from labkit import lab as seam
from labkit.errors import LabError
from labkit.lab import LabSummary
from labkit.sandbox import footprint
from labkit.sandbox.backend import lab_status

# --------------------------------------------------------------------------- the roster


def test_a_count_names_learners_that_sort():
    """Zero-padded so `ls` sorts them as numbered (kubectl sorts its rows by name, `kubectl
    get` in k8s.io/kubectl/pkg/cmd/get, SortBy defaulting to the name)."""
    assert roster.learners("3") == ["learner01", "learner02", "learner03"]
    assert roster.learners("100")[-1] == "learner100" and roster.learners("100")[0] == "learner001"


@pytest.mark.parametrize("spec", ["0", "101", "-1", "+0", "1000"])
def test_a_count_out_of_range_is_refused(spec):
    """A class of none, or past CLASS_MAX, is one LabError line with the range; a signed
    number is a count too (Python's int() reads it), never a file named "-1"."""
    with pytest.raises(LabError, match="out of range") as err:
        roster.learners(spec)
    assert "1 to 100" in err.value.fix


@pytest.mark.parametrize("spec", ["", "  "])
def test_an_empty_learners_value_is_refused_as_empty(spec):
    """Not "Cannot read the roster : Is a directory" (an empty path is the current folder,
    pathlib's Path("")): the value itself is named."""
    with pytest.raises(LabError, match="--learners is empty") as err:
        roster.learners(spec)
    assert "--learners 30" in err.value.fix


def test_a_roster_file_skips_blanks_and_comments(tmp_path):
    """Names are kept in the file's order; text after # is a comment."""
    path = tmp_path / "class.txt"
    path.write_text("# morning group\nada\n\n  grace  # TA\nlinus\n")
    assert roster.learners(str(path)) == ["ada", "grace", "linus"]


@pytest.mark.parametrize(
    "line, words",
    [
        ("Ada", "must consist of lower case letters"),
        ("ada_l", "must consist of lower case letters"),
        ("-ada", "must consist of lower case letters"),
        ("../etc", "must consist of lower case letters"),
        ("--all", "must consist of lower case letters"),
        ("a" * 41, "is 41 characters long; a lab name has at most 40"),
    ],
)
def test_a_bad_name_is_refused_with_its_line(tmp_path, line, words):
    """Lab names are DNS-1123 labels (k8s.io/apimachinery/pkg/util/validation,
    IsDNS1123Label) no longer than the sandbox's 40, so both backends take every name; a name
    never becomes a path or an option."""
    path = tmp_path / "class.txt"
    path.write_text(f"ada\n{line}\n")
    with pytest.raises(LabError) as err:
        roster.learners(str(path))
    assert "line 2" in err.value.what and words in err.value.what
    assert "\n" not in err.value.what


def test_a_repeated_name_an_empty_roster_and_a_missing_file_are_refused(tmp_path):
    """Each is one LabError naming the file, before any lab is touched."""
    path = tmp_path / "class.txt"
    path.write_text("ada\nada\n")
    with pytest.raises(LabError, match="line 2: 'ada' is listed twice"):
        roster.learners(str(path))
    path.write_text("# nobody yet\n")
    with pytest.raises(LabError, match="names no learner"):
        roster.learners(str(path))
    with pytest.raises(LabError, match="Cannot read the roster"):
        roster.learners(str(tmp_path / "missing.txt"))
    path.write_bytes(b"ad\xffa\n")
    with pytest.raises(LabError, match="not UTF-8"):
        roster.learners(str(path))


def test_every_name_fits_both_backends():
    """The 40-character limit is the sandbox's (naming.check_lab_name), within Kind's 49
    (kind/options.MAX_NAME_LENGTH): a roster name is always usable."""
    from labkit.kind.options import validate_name
    from labkit.sandbox.naming import check_lab_name

    longest = "a" * roster.LAB_NAME_MAX
    assert check_lab_name(longest) == validate_name(longest) == longest


# --------------------------------------------------------------------------- class up / down


class _FakeLab:
    def __init__(self, name: str, cni: str) -> None:
        self.name, self.backend, self.cni = name, "sandbox", cni


class _FakeBackend:
    """A backend whose labs live in a set; ``broken`` names fail to come up."""

    def __init__(self, broken: tuple[str, ...] = ()) -> None:
        self.labs: set[str] = set()
        self.broken = broken
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def up(self, lab_name, cni="flannel", kube_proxy_mode=None, *, quiet=False):
        assert quiet
        if lab_name in self.broken:
            raise LabError(f"lab {lab_name!r} could not be built.", "Run it again.")
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        threading.Event().wait(0.02)
        with self.lock:
            self.running -= 1
            self.labs.add(lab_name)
        return _FakeLab(lab_name, cni)

    def down(self, lab_name):
        existed = lab_name in self.labs
        self.labs.discard(lab_name)
        return existed

    def names(self):
        return sorted(self.labs)

    def summaries(self):
        return [LabSummary(n, "sandbox", "calico", "Ready", 1000.0, 30.0) for n in self.names()]


@pytest.fixture
def fake_backend(monkeypatch):
    backend = _FakeBackend(broken=("learner03",))
    monkeypatch.setattr(classroom, "choose_backend", lambda b: ("sandbox", "asked for sandbox"))
    monkeypatch.setattr(classroom, "backend_module", lambda b: backend)
    monkeypatch.setattr(seam, "backend_module", lambda b: backend)
    monkeypatch.setattr(seam, "sandbox_possible", lambda: (True, "root"))
    monkeypatch.setattr(seam, "docker_engine_answers", lambda: (False, "no Docker"))
    return backend


def test_class_up_builds_every_lab_a_few_at_a_time_and_reports_each(fake_backend, capsys):
    """One lab's failure is its own row and the exit code, never a stop for the others; no more
    than --parallel labs are built at once (Python's ThreadPoolExecutor max_workers)."""
    assert cli.main(["class", "up", "--learners", "5", "--parallel", "2"]) == 1
    out, err = capsys.readouterr()
    assert fake_backend.labs == {"learner01", "learner02", "learner04", "learner05"}
    assert fake_backend.most_at_once <= 2
    assert "4 of 5 labs up in" in out and "Failed: learner03;" in out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:6]}
    assert rows == {
        "learner01": "Ready",
        "learner02": "Ready",
        "learner03": "Failed",
        "learner04": "Ready",
        "learner05": "Ready",
    }
    assert "LABKIT_LAB=<name>" in out
    assert err.count("labkit: [") == 5 and "learner03 Failed" in err


def test_class_down_removes_only_the_rosters_labs(fake_backend, capsys):
    """Labs not on the roster stay; a learner without a lab is no error. The table is
    kubectl's style: upper-case headers, CamelCase statuses (NotFound as apimachinery's
    StatusReasonNotFound), ``<none>`` for no value (k8s.io/kubectl/pkg/cmd/get
    customcolumn's "<none>")."""
    fake_backend.labs |= {"learner01", "learner02", "other"}
    assert cli.main(["class", "down", "--learners", "3"]) == 0
    out = capsys.readouterr().out
    assert fake_backend.labs == {"other"}
    rows = [line.split() for line in out.splitlines()[:4]]
    assert rows[0] == ["NAME", "STATUS", "DURATION", "MESSAGE"]
    assert [row[:2] + row[3:] for row in rows[1:]] == [
        ["learner01", "Removed", "from", "sandbox"],
        ["learner02", "Removed", "from", "sandbox"],
        ["learner03", "NotFound", "<none>"],
    ]
    assert all(re.fullmatch(r"\d+\.\d\ds", row[2]) for row in rows[1:])


@pytest.mark.parametrize(
    "argv, words",
    [
        (["class", "up", "--learners", "0"], "out of range"),
        (["class", "up", "--learners", "3", "--parallel", "0"], "--parallel 0 is out of range"),
        (["class", "up", "--learners", "3", "--cni", "weave"], "Unknown CNI"),
    ],
)
def test_bad_class_input_changes_nothing(fake_backend, argv, words, capsys):
    """Refused as the CLI refuses any input: one problem line, one fix line, exit code 1."""
    assert cli.main(argv) == 1
    assert words in capsys.readouterr().err
    assert fake_backend.labs == set()


# --------------------------------------------------------------------------- ls and down --all


def test_ls_is_a_kubectl_table_with_the_total():
    """Columns padded by 3 as kubectl's tabwriter does (k8s.io/cli-runtime printers,
    tabwriter padding 3); AGE as apimachinery's duration.HumanDuration; memory in Mi as
    `kubectl top` (k8s.io/kubectl/pkg/metricsutil, `%vMi`)."""
    labs = [
        LabSummary("bob", "sandbox", "calico", "Ready", 1000.0, 30.4),
        LabSummary("alice", "sandbox", "flannel", "Broken", 1000.0 - 3600, 0.0),
        LabSummary("netlab", "kind", None, "Exists"),
    ]
    assert lablist.render(labs, now=1125.0).splitlines() == [
        "NAME     BACKEND   CNI       STATUS   AGE         MEMORY",
        "alice    sandbox   flannel   Broken   62m         0Mi",
        "bob      sandbox   calico    Ready    2m5s        30Mi",
        "netlab   kind      <none>    Exists   <unknown>   <unknown>",
        "",
        "3 labs, 30Mi in total (memory of 1 not known)",
    ]


def test_ls_and_down_all_cover_every_lab(fake_backend, capsys):
    """`down --all` removes what `ls` lists, on each backend that holds it."""
    fake_backend.labs |= {"a", "b"}
    assert cli.main(["ls"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("a ")
    assert cli.main(["down", "--all"]) == 0
    out, err = capsys.readouterr()
    assert "[1/2] sandbox lab a down (" in err and "[2/2] sandbox lab b down (" in err
    assert out == "labkit: 2 lab(s) removed; none is left on this machine.\n"
    assert fake_backend.labs == set()


def test_class_up_and_down_each_have_their_own_help(capsys):
    """As each kubectl command has its own usage, flags and Examples (cobra's Command.Example,
    printed by `kubectl COMMAND --help`): `class up --help` shows N|FILE and examples, `class
    down` takes no --cni (a usage error, exit code 2, as argparse gives)."""
    with pytest.raises(SystemExit) as stop:
        cli.main(["class", "up", "--help"])
    assert stop.value.code == 0
    up_help = capsys.readouterr().out
    assert "--learners N|FILE" in up_help and "labkit class up --learners roster.txt" in up_help
    assert "--cni CNI" in up_help and "--parallel N" in up_help
    with pytest.raises(SystemExit) as stop:
        cli.main(["class", "down", "--help"])
    down_help = capsys.readouterr().out
    assert "--learners N|FILE" in down_help and "--cni" not in down_help
    with pytest.raises(SystemExit) as stop:
        cli.main(["class", "down", "--learners", "3", "--cni", "calico"])
    assert stop.value.code == 2


def test_down_takes_a_name_or_all_not_both(capsys):
    """argparse's mutually exclusive group: a usage error, exit code 2."""
    with pytest.raises(SystemExit) as stop:
        cli.main(["down", "--all", "--name", "x"])
    assert stop.value.code == 2


# --------------------------------------------------------------------------- footprint, status


def test_a_process_belongs_to_the_lab_of_its_namespace_or_its_state_folder():
    """The agent is started with --state-dir /run/labkit/<lab> (sandbox/agent/client.py);
    lab ws1 never claims ws10's agent."""
    folders = {"/run/labkit/ws1": "ws1", "/run/labkit/ws10": "ws10"}
    inodes = {4026532001: "ws1"}
    agent10 = ["python", "-m", "labkit.sandbox.agent", "--state-dir", "/run/labkit/ws10"]
    assert footprint.owner(agent10, 1, inodes, folders) == "ws10"
    assert footprint.owner(["x", "/run/labkit/ws1/agent.sock"], 1, inodes, folders) == "ws1"
    assert footprint.owner(["bash"], 4026532001, inodes, folders) == "ws1"
    assert footprint.owner(["bash", "/run/labkit/ws100"], 2, inodes, folders) is None


def test_rss_is_read_from_proc_status():
    """VmRSS of /proc/<pid>/status (proc(5)); a kernel thread has none."""
    assert footprint.vm_rss_kib("Name:\tpython\nVmRSS:\t  30720 kB\nThreads:\t3\n") == 30720
    assert footprint.vm_rss_kib("Name:\tkthreadd\n") == 0


@pytest.mark.parametrize(
    "phase, present, status",
    [
        ("ready", True, "Ready"),
        ("ready", False, "Broken"),
        ("repairing", False, "Repairing"),
        ("building", False, "Building"),
        (None, True, "Leftovers"),
    ],
)
def test_a_sandbox_labs_status_comes_from_its_phase_and_namespaces(phase, present, status):
    """The phases sandbox/state.py writes (building_state, REPAIRING, ready)."""
    assert lab_status(phase, present) == status


@pytest.mark.parametrize("name", ["Alice", "a" * 41, "-x", "a/b"])
def test_up_refuses_a_bad_lab_name_before_touching_anything(name, capsys):
    """`labkit up --name` on the sandbox: one problem line and its fix (sandbox/naming.py
    check_lab_name runs first in backend.up)."""
    assert cli.main(["up", "--backend", "sandbox", "--cni", "calico", f"--name={name}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-2].endswith("is not a usable lab name.")
    assert err[-1].startswith("Fix: Use 1-40 lower-case letters")
    assert len(err) == 3 and err[0].startswith("labkit: using the sandbox backend")


def test_an_interrupted_class_up_names_the_command_that_undoes_it(fake_backend, capsys):
    """Ctrl-C ends with exit code 130 (128 + SIGINT, as POSIX shells report it) and the class's
    own undo, not a single lab's."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    fake_backend.up = interrupted
    assert cli.main(["class", "up", "--learners", "2"]) == 130
    assert "`labkit class down --learners 2`" in capsys.readouterr().err


def test_a_process_is_named_by_its_module_or_program():
    """/proc/<pid>/cmdline holds the arguments NUL-separated (proc(5)); `python -m MODULE` is
    named by its module, as `ps` users know the agent."""
    agent = ["/venv/bin/python", "-m", "labkit.sandbox.agent", "--state-dir", "/run/labkit/a"]
    assert footprint.program(agent) == "labkit.sandbox.agent"
    assert footprint.program(["/usr/bin/bwrap", "--unshare-pid", "ip"]) == "bwrap"
    assert footprint.program(["python3", "-m"]) == "python3"
