"""The pod verbs of `labkit kubectl` on the sandbox (exec, run, logs), pure: kubectl's flag
parsing, its wording for every mistake, what reaches the lab through the seam, and what is
printed; plus `labkit shell`'s wrapper and Kind's `kubectl exec -it` command line."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from labkit.errors import LabError
from labkit.kind.lab_access import exec_interactive_argv
from labkit.kubectl import podrun, shell
from labkit.kubectl.flags import Flag, KubectlError, parse
from labkit.kubectl.pods import Terminal
from labkit.kubectl.podverbs import serve_pod_verb
from labkit.values import ExecResult, ObjectRef


def _pod(name: str, *containers: str, phase: str = "Running", ns: str = "default") -> dict:
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": {"containers": [{"name": c, "image": "x"} for c in containers]},
        "status": {"phase": phase},
    }


class PodLab:
    """A lab holding a few pods; records what the verbs ask of it."""

    def __init__(self, *pods: dict, fail: LabError | None = None, owners=()) -> None:
        self.pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
        self.owners = {(o["kind"], o["metadata"]["name"]): o for o in owners}
        self.calls: list[tuple[Any, ...]] = []
        self.fail = fail

    def get(self, kind, name=None, namespace="default", selector=None):
        if kind != "pods":
            return [self.owners[(kind, name)]] if (kind, name) in self.owners else []
        if name is not None:
            return [self.pods[(namespace, name)]] if (namespace, name) in self.pods else []
        return [
            p
            for (ns, _), p in self.pods.items()
            if ns == namespace
            and all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
        ]

    def exec(self, pod, command, namespace="default", timeout=10.0):
        self.calls.append(("exec", pod, tuple(command), namespace))
        return ExecResult(tuple(command), 3, "out\n", "err\n")

    def exec_interactive(self, pod, argv, namespace="default", container=None, tty=True):
        self.calls.append(("exec_interactive", pod, tuple(argv), namespace, container, tty))
        if self.fail is not None:
            raise self.fail
        return 0

    def logs(self, pod, namespace="default", container=None):
        self.calls.append(("logs", pod, namespace, container))
        if self.fail is not None:
            raise self.fail
        return "a\nb\nc\n"

    def apply(self, manifest, namespace=None):
        self.calls.append(("apply", manifest))
        meta = manifest["metadata"]
        pod = {**manifest, "status": {"phase": "Running"}}
        self.pods[(meta["namespace"], meta["name"])] = pod
        return [ObjectRef("Pod", meta["name"], meta["namespace"])]

    def delete(self, refs):
        self.calls.append(("delete", tuple(refs)))
        for ref in refs:
            self.pods.pop((ref.namespace, ref.name), None)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(lab, line: str, tty: bool = False) -> tuple[str, str, int | None]:
    term = Terminal(Tty() if tty else io.StringIO(), io.StringIO(), io.StringIO())
    code = serve_pod_verb(lab, line.split(), term)
    return term.stdout.getvalue(), term.stderr.getvalue(), code


FLAGS = (
    Flag("--container", "-c"),
    Flag("--stdin", "-i", value=False),
    Flag("--tty", "-t", value=False),
    Flag("--rm", value=False),
)


@pytest.mark.parametrize(
    "argv",
    [["-it", "web"], ["-ti", "web"], ["-i", "-t", "web"], ["web", "--stdin", "--tty=true"]],
)
def test_interactive_flags_parse_every_way_kubectl_takes_them(argv):
    parsed = parse("exec", [*argv, "--", "sh", "-c", "x"], FLAGS, "help", ())
    assert parsed.on("--stdin") and parsed.on("--tty")
    assert (parsed.before_dash(), parsed.after_dash()) == (["web"], ["sh", "-c", "x"])


@pytest.mark.parametrize("argv", [["-cweb"], ["-c", "web"], ["-c=web"], ["--container=web"]])
def test_a_flag_value_parses_every_way_kubectl_takes_it(argv):
    assert parse("exec", argv, FLAGS, "help", ()).values == {"--container": ["web"]}


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--bogus"], "error: unknown flag: --bogus\nSee 'kubectl exec --help' for usage."),
        (["-x"], "error: unknown shorthand flag: 'x' in -x\nSee 'kubectl exec --help' for usage."),
        (["--rn"], "error: unknown flag: --rn (did you mean --rm?)\n"),
        (["-c"], "error: flag needs an argument: 'c' in -c\n"),
        (["--container"], "error: flag needs an argument: --container\n"),
        (["--rm=maybe"], 'error: invalid argument "maybe" for "--rm" flag: strconv.ParseBool'),
        (["-f", "x"], "error: labkit kubectl on the sandbox does not serve -f for exec; it serves"),
    ],
)
def test_flag_mistakes_get_kubectls_wording(argv, text):
    with pytest.raises(KubectlError) as caught:
        parse("exec", argv, FLAGS, "help", ("-f",))
    assert caught.value.text.startswith(text) and caught.value.code == 1


def test_help_is_printed_on_stdout_with_exit_0():
    out, err, code = run(PodLab(), "exec -h")
    assert (err, code) == ("", 0) and "kubectl exec (POD | TYPE/NAME)" in out
    assert "any --image is accepted" in run(PodLab(), "run --help")[0]
    assert "agnhost netexec" in run(PodLab(), "logs --help")[0]


def test_exec_runs_through_the_seam_and_passes_output_and_exit_code_through():
    lab = PodLab(_pod("web", "app", ns="demo"))
    assert run(lab, "-n demo exec web -- ip addr") == (
        "out\n",
        "err\ncommand terminated with exit code 3\n",
        3,
    )
    assert lab.calls == [("exec", "demo/web", ("ip", "addr"), "demo")]


def test_exec_it_opens_the_command_on_this_terminal():
    lab = PodLab(_pod("web", "app", "sidecar"))
    out, err, code = run(lab, "exec -it pod/web -c sidecar -- sh", tty=True)
    assert (out, err, code) == ("", "", 0)
    assert lab.calls == [("exec_interactive", "default/web", ("sh",), "default", "sidecar", True)]
    out, err, code = run(lab, "exec -ti web -- sh")  # no terminal: kubectl says so, goes on
    assert err == (
        'Defaulted container "app" out of: app, sidecar\n'
        "Unable to use a TTY - input is not a terminal or the right kind of file\n"
    )
    assert lab.calls[-1] == ("exec_interactive", "default/web", ("sh",), "default", "app", True)
    out, err, code = run(lab, "exec -q web -- ip addr")  # -q: no "Defaulted container" line
    assert err == "err\ncommand terminated with exit code 3\n"


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("exec web -c nope -- sh", "error: container nope is not valid for pod web out of: app\n"),
        ("exec ghost -- sh", 'Error from server (NotFound): pods "ghost" not found\n'),
        ("exec web sh", "error: exec [POD] [COMMAND] is not supported anymore. Use exec [POD] "),
        ("exec web --", "error: you must specify at least one command for the container\n"),
        ("exec -- sh", "error: expected 'exec (POD | TYPE/NAME) -- COMMAND [args...]'.\n"),
        ("exec cm/x -- sh", "error: cannot attach to *v1.ConfigMap: selector for *v1.ConfigMap "),
        ("exec widget/x -- sh", 'error: the server doesn\'t have a resource type "widget"\n'),
        ("exec deploy/ghost -- sh", 'Error from server (NotFound): deployments.apps "ghost" '),
        ("exec deploy/none -- sh", "error: deployment.apps/none selects no pods\n"),
        ("exec done -- sh", "error: cannot exec into a container in a completed pod; current "),
    ],
)
def test_exec_mistakes_get_kubectls_wording_and_touch_nothing(line, text):
    none = {"kind": "Deployment", "metadata": {"name": "none"}, "spec": {"selector": {}}}
    lab = PodLab(_pod("web", "app"), _pod("done", "app", phase="Succeeded"), owners=[none])
    out, err, code = run(lab, line)
    assert (out, code) == ("", 1) and err.startswith(text)
    assert lab.calls == []


def test_a_deployment_or_service_names_one_of_its_pods_a_running_one_first():
    pods = [_pod(n, "app", phase=ph) for n, ph in (("web-a", "Pending"), ("web-b", "Running"))]
    for pod in pods:
        pod["metadata"]["labels"] = {"app": "web"}
    owners = [
        {
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
        },
        {"kind": "Service", "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}}},
    ]
    lab = PodLab(*pods, owners=owners)
    assert run(lab, "exec deploy/web -- ip addr")[2] == 3
    assert run(lab, "exec svc/web -- ip addr")[2] == 3
    assert [c[1] for c in lab.calls] == ["default/web-b", "default/web-b"]
    assert run(lab, "logs deployment/web") == ("a\nb\nc\n", "Found 2 pods, using pod/web-b\n", 0)


def test_a_lab_error_is_one_error_line():
    lab = PodLab(_pod("web", "app"), fail=LabError("Pod default/web has no network.", "Wait."))
    assert run(lab, "exec -i web -- sh") == (
        "",
        "error: Pod default/web has no network. Wait.\n",
        1,
    )


def test_other_verbs_are_not_pod_verbs():
    assert serve_pod_verb(PodLab(), ["get", "pods"], Terminal.of_process()) is None


def test_run_builds_the_pod_kubectl_run_creates():
    parsed = parse(
        "run", ["x", "--image=nicolaka/netshoot", "-it", "--", "bash"], podrun.FLAGS, "", ()
    )
    assert podrun.pod_manifest("x", parsed) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x", "namespace": "default", "labels": {"run": "x"}},
        "spec": {
            "containers": [
                {
                    "name": "x", "image": "nicolaka/netshoot", "args": ["bash"],
                    "stdin": True, "stdinOnce": True, "tty": True,
                }
            ],
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
        },
    }  # fmt: skip
    parsed = parse(
        "run",
        ["x", "--image=i", "-l", "a=b", "--command", "--", "sleep", "1"],
        podrun.FLAGS,
        "",
        (),
    )
    manifest = podrun.pod_manifest("x", parsed)
    assert manifest["metadata"]["labels"] == {"a": "b"}
    assert manifest["spec"]["containers"][0]["command"] == ["sleep", "1"]


def test_run_it_rm_opens_a_shell_then_deletes_the_pod():
    lab = PodLab()
    out, err, code = run(lab, "run -it --rm netshoot --image=nicolaka/netshoot -- bash", True)
    assert (out, err, code) == (
        'pod "netshoot" deleted\n',
        "If you don't see a command prompt, try pressing enter.\n",
        0,
    )
    assert [c[0] for c in lab.calls] == ["apply", "exec_interactive", "delete"]
    assert lab.calls[1] == (
        "exec_interactive", "default/netshoot", ("bash",), "default", "netshoot", True,
    )  # fmt: skip
    assert lab.pods == {}


def test_run_rm_deletes_the_pod_even_when_the_shell_fails():
    lab = PodLab(fail=LabError("bwrap is missing.", "Install it."))
    out, err, code = run(lab, "run -i --rm t --image=busybox")
    assert (out, code) == ('pod "t" deleted\n', 1) and err.endswith(
        "error: bwrap is missing. Install it.\n"
    )
    assert lab.calls[1][2] == ("sh",) and lab.pods == {}


def test_run_without_attach_creates_the_pod_and_returns():
    lab = PodLab()
    assert run(lab, "run client --image=nicolaka/netshoot --restart=Never") == (
        "pod/client created\n",
        "",
        0,
    )
    assert lab.pods[("default", "client")]["spec"]["restartPolicy"] == "Never"


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("run --image=x", "error: NAME is required for run\nSee 'kubectl run -h' for help"),
        ("run x", 'error: required flag(s) "image" not set\n'),
        ("run x --image=i --restart=Sometimes", "error: invalid restart policy: Sometimes\n"),
        ("run x --image=i --rm", "error: --rm should only be used for attached containers\n"),
        ("run web --image=i", 'Error from server (AlreadyExists): pods "web" already exists\n'),
        ("run x --image=i -l nolabel", "error: invalid label spec: nolabel\n"),
        ("run x --image=i --port=80", "error: labkit kubectl on the sandbox does not serve --port"),
    ],
)
def test_run_mistakes_get_kubectls_wording_and_create_nothing(line, text):
    lab = PodLab(_pod("web", "app"))
    out, err, code = run(lab, line)
    assert (out, code) == ("", 1) and err.startswith(text)
    assert lab.calls == []


def test_run_waits_for_running_and_gives_up_on_a_pod_that_never_runs():
    lab = PodLab(_pod("p", "p", phase="Pending"))
    naps: list[float] = []
    with pytest.raises(KubectlError, match="pod default/p is Pending, not Running"):
        podrun.wait_running(lab, "default", "p", timeout=0.0, sleep=naps.append)
    lab.pods[("default", "p")]["status"]["phase"] = "Running"
    podrun.wait_running(lab, "default", "p", sleep=naps.append)
    assert naps == []


def test_logs_print_the_pods_log_with_tail_and_container():
    lab = PodLab(_pod("web", "app", "sidecar"))
    assert run(lab, "logs web app --tail=2") == ("b\nc\n", "", 0)
    assert run(lab, "logs web -c sidecar --tail 0") == ("", "", 0)
    out, err, code = run(lab, "logs pod/web")
    assert code == 0
    assert (out, err) == ("a\nb\nc\n", 'Defaulted container "app" out of: app, sidecar\n')
    assert lab.calls == [
        ("logs", "default/web", "default", "app"),
        ("logs", "default/web", "default", "sidecar"),
        ("logs", "default/web", "default", "app"),
    ]


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("logs", "error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\n"),
        ("logs web --tail=x", 'error: invalid argument "x" for "--tail" flag: strconv.ParseInt'),
        ("logs web -c app app", "error: only one of -c or an inline [CONTAINER] arg is allowed"),
        ("logs web -c nope", "error: container nope is not valid for pod web out of: app\n"),
        ("logs ghost", 'Error from server (NotFound): pods "ghost" not found\n'),
        ("logs web -f", "error: labkit kubectl on the sandbox does not serve -f for logs"),
    ],
)
def test_logs_mistakes_get_kubectls_wording(line, text):
    lab = PodLab(_pod("web", "app"))
    out, err, code = run(lab, line)
    assert (out, code) == ("", 1) and err.startswith(text)
    assert lab.calls == []


def test_a_pod_the_sandbox_keeps_no_log_for_is_refused_in_one_line():
    why = LabError("The sandbox keeps no log for kube-system/kube-proxy-x.", "Read iptables.")
    lab = PodLab(_pod("kube-proxy-x", "kube-proxy", ns="kube-system"), fail=why)
    out, err, code = run(lab, "logs -n kube-system kube-proxy-x")
    assert (out, code) == ("", 1) and len(err.splitlines()) == 1


def test_kind_exec_it_is_kubectl_exec_on_the_labs_context():
    argv = exec_interactive_argv("kubectl", "/k", "netlab", ("demo", "web"), ["sh"], "app", True)
    assert argv == [
        "kubectl", "--kubeconfig", "/k", "--context", "kind-netlab",
        "exec", "-it", "-c", "app", "-n", "demo", "web", "--", "sh",
    ]  # fmt: skip
    argv = exec_interactive_argv("kubectl", "/k", "netlab", ("d", "w"), ["cat"], None, False)
    assert argv[5:] == ["exec", "-i", "-n", "d", "w", "--", "cat"]


def test_labkit_shell_puts_a_kubectl_for_the_lab_first_on_path(tmp_path, capsys):
    probe = tmp_path / "probe-shell"
    probe.write_text(
        "#!/bin/sh\ncommand -v kubectl > " + str(tmp_path / "where") + "\n"
        'cat "$(command -v kubectl)" > ' + str(tmp_path / "script") + "\n"
        'echo "$LABKIT_LAB" > ' + str(tmp_path / "lab") + "\nexit 3\n"
    )
    probe.chmod(0o755)
    code = shell.open_shell("netlab", {"SHELL": str(probe), "PATH": os.environ["PATH"]})
    assert code == 3
    where = Path((tmp_path / "where").read_text().strip())
    assert where.name == "kubectl" and not where.parent.exists()  # removed afterwards
    assert '-m labkit.cli kubectl --name netlab "$@"' in (tmp_path / "script").read_text()
    assert (tmp_path / "lab").read_text() == "netlab\n"
    assert capsys.readouterr().err == shell.banner("netlab") + "\n"


@pytest.mark.parametrize("sent", [signal.SIGHUP, signal.SIGTERM])
def test_a_hung_up_or_terminated_labkit_shell_ends_its_shell_and_removes_its_kubectl(
    tmp_path, sent
):
    """A closed JupyterLab terminal hangs up; a stop terminates. Either way labkit hangs its
    shell up, as a closed terminal does (an interactive bash ignores SIGTERM, as this shell
    does), and the script's folder goes."""
    probe = tmp_path / "probe-shell"
    probe.write_text(
        "#!/bin/bash\ntrap '' TERM\n"
        'dirname "$(command -v kubectl)" > '
        + str(tmp_path / "where")
        + "\nexec sleep 30\n"  # TERM stays ignored
    )
    probe.chmod(0o755)
    env = {**os.environ, "SHELL": str(probe)}
    code = "from labkit.kubectl.shell import open_shell; open_shell('netlab')"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.DEVNULL)
    where = tmp_path / "where"
    for _ in range(100):
        if where.exists() and where.read_text().strip():
            break
        time.sleep(0.05)
    folder = Path(where.read_text().strip())
    assert folder.is_dir()
    proc.send_signal(sent)
    assert proc.wait(timeout=20) == 128 + sent
    assert not folder.exists()


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_hang_up_as_the_shell_starts_ends_labkit_shell_and_the_shell(tmp_path, when):
    """A hang-up that arrives just before the shell is started, or once it exists but before
    labkit holds it (the terminal closed at once), is noted and raised as soon as labkit holds
    the shell: exit 129, the shell ended, not left running, and the script's folder removed."""
    sleeper = tmp_path / "sleeper"
    sleeper.write_text("#!/bin/sh\nexec sleep 30\n")
    sleeper.chmod(0o755)
    child = tmp_path / "child"
    env = {**os.environ, "SHELL": str(sleeper), "TMPDIR": str(tmp_path)}
    code = (
        "import os, signal, subprocess\n"
        "from labkit.kubectl import shell\n"
        "start = subprocess.Popen\n"
        "def hung_up(*args, **kwargs):\n"
        f"    if {when!r} == 'before':\n"
        "        os.kill(os.getpid(), signal.SIGHUP)\n"
        "    proc = start(*args, **kwargs)\n"
        f"    open({str(child)!r}, 'w').write(str(proc.pid))\n"
        f"    if {when!r} == 'after':\n"
        "        os.kill(os.getpid(), signal.SIGHUP)\n"
        "    return proc\n"
        "shell.subprocess.Popen = hung_up\n"
        "shell.open_shell('netlab')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
    assert run.returncode == 128 + signal.SIGHUP
    assert not Path(f"/proc/{child.read_text()}").exists()  # ended and reaped
    assert not list(tmp_path.glob("labkit-shell-*"))


def test_labkit_shell_refuses_a_name_that_is_not_a_lab_name():
    with pytest.raises(LabError, match="is not a lab name"):
        shell.open_shell("x; rm -rf /", {"SHELL": "/bin/false"})
    assert shell.shell_argv({}) != [] and shell.shell_argv({"SHELL": "/bin/zsh"}) == ["/bin/zsh"]
