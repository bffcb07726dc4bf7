"""A sandbox lab's state file, its locks, and the host-port and outside entries the data plane
derives from the store (no namespace is created here, and no root is needed)."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest

from labkit.errors import LabError
from labkit.sandbox.fabric import GATEWAY_IP, PodNet
from labkit.sandbox.iptables import HostPort
from labkit.sandbox.state import (
    LAB_STATE_FORMAT,
    StateFile,
    begin_change,
    building_state,
    built_pods,
    created_at,
    end_change,
    lab_uid,
    lifecycle_lock,
    pending_change,
    wall_clock,
    with_data_plane,
)
from labkit.sandbox.workloads import host_ports, ingress_backend_port, outside_workloads

NET = PodNet("default", "web", "lab-worker", "10.244.1.5", "lk-lab-p-0123456789", "veth1")

# --------------------------------------------------------------------------- the state document


def test_a_building_state_records_the_lab_and_no_pods():
    state = building_state("lab", "calico", {"objects": []}, 1.5)
    assert state["format"] == LAB_STATE_FORMAT and state["phase"] == "building"
    assert (state["name"], state["cni"], state["kube_proxy_mode"]) == ("lab", "calico", "iptables")
    assert state["store"] == {"objects": []} and state["pods"] == {}
    assert state["created"] == 1.5


def test_the_labs_creation_time_and_the_wall_clock_are_utc():
    assert created_at(1.5) == datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=timezone.utc)
    before = time.time()
    now = wall_clock()
    assert now.tzinfo == timezone.utc and before - 1 <= now.timestamp() <= time.time() + 1


def test_a_labs_uid_lasts_its_life_and_is_new_when_built_again():
    state = building_state("lab", "calico", {}, 1.5)
    assert lab_uid(state) == lab_uid(with_data_plane(state, {"objects": []}, {}))
    assert lab_uid(state) != lab_uid({**state, "created": state["created"] + 0.001})
    assert lab_uid(state) != lab_uid({**state, "name": "other"})
    assert lab_uid(state) == str(uuid.uuid5(uuid.NAMESPACE_URL, "labkit-sandbox:lab:1.5"))


def test_pod_networks_survive_a_save_and_a_json_round_trip():
    state = building_state("lab", "flannel", {}, 1.5)
    saved = with_data_plane(state, {"objects": [1]}, {NET.key: NET})
    assert saved["store"] == {"objects": [1]} and "updated" in saved
    assert state["pods"] == {}, "the state it was made from is left alone"
    assert built_pods(json.loads(json.dumps(saved))) == {NET.key: NET}


# --------------------------------------------------------------------------- the state file


def test_state_file_reads_what_it_wrote_and_its_stamp_changes(tmp_path):
    state_file = StateFile(tmp_path / "lab")
    assert not state_file.exists() and state_file.stamp() is None
    with state_file.locked(), state_file.locked():  # re-entrant within a process
        state_file.write(building_state("lab", "flannel", {}, 1.5))
    first = state_file.stamp()
    assert state_file.read()["name"] == "lab" and first is not None
    state_file.write({**state_file.read(), "phase": "ready"})
    assert state_file.stamp() != first and state_file.read()["phase"] == "ready"
    assert sorted(os.listdir(tmp_path / "lab")) == ["lock", "state.journal", "state.json"]


@pytest.mark.parametrize(
    ("text", "says"),
    [(None, "is gone"), ("{not json", "is damaged"), ('{"format": 99}', "unknown format")],
)
def test_state_file_refuses_a_missing_damaged_or_foreign_state(tmp_path, text, says):
    state_file = StateFile(tmp_path)
    if text is not None:
        state_file.path.write_text(text)
    with pytest.raises(LabError, match=says):
        state_file.read()


def test_a_failed_write_leaves_the_previous_state_whole_and_no_temporary_file(
    tmp_path, monkeypatch
):
    state_file = StateFile(tmp_path)
    state_file.write(building_state("lab", "flannel", {}, 1.5))

    def killed(src, dst):
        raise KeyboardInterrupt  # as if the process stopped between writing and renaming

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):  # another process: it rewrites the whole state
        StateFile(tmp_path).write({**state_file.read(), "phase": "ready"})
    monkeypatch.undo()
    assert state_file.read()["phase"] == "building"
    assert sorted(os.listdir(tmp_path)) == ["state.journal", "state.json"]


def test_a_change_is_recorded_before_it_acts_and_forgotten_when_saved(tmp_path):
    assert pending_change(tmp_path) is None
    begin_change(tmp_path, ["default/web", "default/db"])
    begin_change(tmp_path, ["default/api"])  # a change after an unfinished one adds to it
    assert pending_change(tmp_path) == {"default/web", "default/db", "default/api"}
    begin_change(tmp_path, [])
    assert pending_change(tmp_path) == {"default/web", "default/db", "default/api"}
    end_change(tmp_path)
    end_change(tmp_path)
    assert pending_change(tmp_path) is None
    begin_change(tmp_path, [])
    assert pending_change(tmp_path) == set(), "a change of rules only touches no pod"


# --------------------------------------------------------------------------- the lifecycle lock


def test_lifecycle_lock_is_reentrant_in_a_thread_and_exclusive_across_threads():
    lab_name = f"unit-lock-{os.getpid()}"
    refused: list[str] = []

    def other_thread() -> None:
        try:
            with lifecycle_lock(lab_name, timeout=0.1):
                pass
        except LabError as exc:
            refused.append(str(exc))

    with lifecycle_lock(lab_name), lifecycle_lock(lab_name):
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert refused and "Another labkit process" in refused[0]
    with lifecycle_lock(lab_name, timeout=0.1):  # released once the outermost hold ends
        pass


# --------------------------------------------------------------------------- derived entries


def test_host_ports_list_the_local_pods_mappings_but_not_host_network_pods():
    pod = {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "ports": [
                        {"containerPort": 8080, "hostPort": 30080},
                        {
                            "containerPort": 53,
                            "protocol": "UDP",
                            "hostPort": 5353,
                            "hostIP": "1.2.3.4",
                        },
                        {"containerPort": 9000},
                    ],
                }
            ]
        },
    }
    assert host_ports([pod], {NET.key: NET}) == [
        HostPort("default/web", NET.ip, "TCP", 30080, 8080, ""),
        HostPort("default/web", NET.ip, "UDP", 5353, 53, "1.2.3.4"),
    ]
    host_net = PodNet("default", "web", "lab-worker", "172.18.0.3", "lk-lab-w1", "", True)
    assert host_ports([pod], {NET.key: host_net}) == []
    assert host_ports([pod], {}) == []


def test_an_ingress_backend_port_is_given_by_number_or_by_name():
    service = {"spec": {"ports": [{"name": "http", "port": 80}, {"name": "admin", "port": 9000}]}}
    assert ingress_backend_port(service, {"number": 8443}) == 8443
    assert ingress_backend_port(service, {"name": "admin"}) == 9000
    assert ingress_backend_port(service, {"name": "metrics"}) is None
    assert ingress_backend_port(service, None) is None


def test_the_outside_serves_its_ports_from_the_gateway_address():
    resolver, servers = outside_workloads(
        "lab", [{"port": 443, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}]
    )
    assert servers["netns"] == "lk-lab-outside" and servers["ip"] == GATEWAY_IP
    assert servers["role"] == "netexec" and servers["ports"] == [
        {"port": 80, "protocol": "TCP"},
        {"port": 443, "protocol": "TCP"},
        {"port": 8443, "protocol": "TCP"},
    ]
    assert resolver["netns"] == "lk-lab-outside" and resolver["role"] == "resolver"
    assert resolver["ports"] == [{"port": 53, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]
