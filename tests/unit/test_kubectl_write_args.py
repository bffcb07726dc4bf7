"""The write verbs' command lines, pure: pflag's flag forms per verb table, label changes told
apart from resources, ``-f`` folders read as kubectl walks them, and what expose introspects."""

from __future__ import annotations

import pytest

from labkit.kubectl import flags, sources
from labkit.kubectl.expose import parse_selector, ports_of, selector_of
from labkit.kubectl.flags import KubectlError
from labkit.kubectl.label import parse_changes, split_pairs

TABLE = (flags.NAMESPACE, flags.FILENAME, flags.Flag("--overwrite", value=False))


def split(line: str) -> flags.Parsed:
    return flags.parse("apply", line.split(), TABLE, "help text")


@pytest.mark.parametrize(
    "line",
    [
        "-f a.yaml -n shop",
        "--filename=a.yaml --namespace shop",
        "-fa.yaml -nshop",
        "-f=a.yaml --namespace=shop",
        "-n other -f a.yaml -n shop",  # the last one wins
    ],
)
def test_flag_forms_pflag_accepts(line):
    parsed = split(line)
    assert parsed.values["--filename"] == ["a.yaml"]
    assert parsed.last("--namespace") == "shop" and parsed.words == []


def test_repeated_files_booleans_words_and_the_double_dash():
    parsed = split("-f a.yaml word -f - --overwrite -- -n x")
    assert parsed.values["--filename"] == ["a.yaml", "-"]
    assert parsed.on("--overwrite") and parsed.words == ["word", "-n", "x"]
    assert (parsed.before_dash(), parsed.after_dash()) == (["word"], ["-n", "x"])
    assert not split("--overwrite=false").on("--overwrite")


@pytest.mark.parametrize(
    ("value", "on"),
    [(v, True) for v in ("1", "t", "T", "TRUE", "true", "True")]
    + [(v, False) for v in ("0", "f", "F", "FALSE", "false", "False")],
)
def test_a_boolean_takes_exactly_gos_parsebool_spellings(value, on):
    """pflag's boolValue.Set is strconv.ParseBool (Go's strconv/atob.go): these twelve, no other."""
    assert split(f"--overwrite={value}").on("--overwrite") is on


@pytest.mark.parametrize("value", ["tRuE", "yes", "on", ""])
def test_any_other_boolean_spelling_is_kubectls_parse_error(value):
    with pytest.raises(KubectlError, match=f'invalid argument "{value}" for "--overwrite" flag'):
        split(f"--overwrite={value}")


def test_every_verb_shares_one_parser_so_write_verbs_group_short_flags_too():
    """pflag parses every kubectl verb alike: grouped one-letter flags end at the first one that
    takes a value, which takes the rest of the word (``-Af`` would need a value)."""
    table = (flags.Flag("--all", "-a", value=False), flags.FILENAME)
    parsed = flags.parse("delete", ["-afweb.yaml"], table, "")
    assert parsed.on("--all") and parsed.values["--filename"] == ["web.yaml"]
    assert parsed.dash is None and parsed.after_dash() is None
    assert split("--overwrite=true").on("--overwrite") and not split("").given("--overwrite")


@pytest.mark.parametrize(
    ("line", "said", "code"),
    [
        ("-h", "help text", 0),
        ("--help", "help text", 0),
        ("--bogus", "error: unknown flag: --bogus\nSee 'kubectl apply --help' for usage.", 1),
        (
            "-x",
            "error: unknown shorthand flag: 'x' in -x\nSee 'kubectl apply --help' for usage.",
            1,
        ),
        ("--namspace x", "error: unknown flag: --namspace (did you mean --namespace?)", 1),
        ("-n", "error: flag needs an argument: 'n' in -n\n", 1),
        ("--namespace", "error: flag needs an argument: --namespace\n", 1),
        ("--overwrite=maybe", 'error: invalid argument "maybe" for "--overwrite" flag', 1),
        (
            "--dry-run=server",
            "error: labkit kubectl on the sandbox does not serve --dry-run for apply",
            1,
        ),
        ("-R", "error: labkit kubectl on the sandbox does not serve -R for apply", 1),
        ("-l app=web", "error: labkit kubectl on the sandbox does not serve -l for apply", 1),
    ],
)
def test_flag_mistakes(line, said, code):
    with pytest.raises(KubectlError) as caught:
        split(line)
    assert caught.value.text.startswith(said) and caught.value.code == code


def test_label_changes_come_after_the_resources():
    assert split_pairs(["pod", "web", "a=b", "c-"]) == (["pod", "web"], ["a=b", "c-"])
    assert split_pairs(["pod/web", "-", "=x"]) == (["pod/web", "-", "=x"], [])
    with pytest.raises(
        KubectlError, match="all resources must be specified before label changes: web"
    ):
        split_pairs(["pod", "a=b", "web"])
    assert parse_changes(["a=b", "c-", "empty="]) == ({"a": "b", "empty": ""}, ["c"])


def test_a_folder_is_its_manifest_files_in_lexical_order(tmp_path):
    for name in ("b.yml", "a.json", "c.yaml", "notes.md", "Z.yaml"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "sub.yaml").mkdir()
    assert sources.files(str(tmp_path)) == [
        str(tmp_path / n) for n in ("Z.yaml", "a.json", "b.yml", "c.yaml")
    ]
    assert sources.files("-") == [sources.STDIN]
    assert sources.files(str(tmp_path / "notes.md")) == [str(tmp_path / "notes.md")]


def test_a_one_line_text_is_never_read_as_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "other.yaml").write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    with pytest.raises(KubectlError, match="it holds a str, not a Kubernetes object"):
        sources.parse("STDIN", "other.yaml")


def test_expose_introspects_selectors_and_ports_as_kubectl_does():
    pod = {
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {"name": "a", "ports": [{"containerPort": 53, "protocol": "UDP"}]},
                {"name": "b", "ports": [{"containerPort": 53}, {"containerPort": 8080}]},
            ]
        },
    }
    assert selector_of(pod) == {"app": "web"}
    assert ports_of(pod) == [(53, "UDP"), (53, "TCP"), (8080, "TCP")]
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}},
        },
    }
    assert selector_of(deployment) == {"app": "web"} and ports_of(deployment) == [(80, "TCP")]
    service = {"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    assert ports_of(service) == [(80, "TCP")]
    with pytest.raises(ValueError, match="the service has no pod selector set"):
        selector_of(service)
    expressions = {"matchExpressions": [{"key": "app", "operator": "Exists"}]}
    with pytest.raises(ValueError, match="couldn't convert expressions"):
        selector_of({**deployment, "spec": {"selector": expressions}})
    with pytest.raises(ValueError, match="invalid replicaset: no selectors"):
        selector_of({"kind": "ReplicaSet", "metadata": {"name": "r"}, "spec": {}})
    assert parse_selector("app=web,tier=") == {"app": "web", "tier": ""}
    with pytest.raises(KubectlError, match="unexpected empty label key"):
        parse_selector("=web")
