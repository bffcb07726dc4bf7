"""Discovery stays with the client that ran it: a Kind lab recreated on the same API address
(its port reused) must not see kinds the earlier cluster served, and nothing is written to the
shared temp folder. Against the fake API server of fake_apiserver.py."""

import tempfile

import pytest

from labkit.errors import LabError
from labkit.kind.lab import KindLab
from tests.unit.test_kind_crd_order import CRD, WIDGET


def test_a_recreated_lab_on_the_same_address_does_not_see_the_old_clusters_kinds(
    fake_api, fake_api_lab, monkeypatch, tmp_path
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fake_api_lab.apply([CRD, WIDGET])
    assert fake_api_lab.objects.resource("Widget", "example.com/v1").kind == "Widget"
    fake_api.served.clear()  # the cluster is gone; a new one answers on the same address
    fresh = KindLab("t", "calico", "iptables", fake_api.kubeconfig)
    with pytest.raises(LabError) as err:
        fresh.objects.resource("Widget", "example.com/v1")
    assert "This cluster serves no kind 'Widget' in example.com/v1" in err.value.what
    assert not list(tmp_path.iterdir())


def test_a_crd_served_after_discovery_is_found_by_any_of_its_names(fake_api, fake_api_lab):
    """A kind spelled as kubectl accepts it (plural, singular, short name) that discovery has not
    seen yet, e.g. a CRD another process applied, is looked up again before it is refused."""
    fake_api_lab.objects.resource("Deployment")  # discovery runs
    fake_api.served["/apis/example.com/v1"] = (
        "example.com/v1",
        [("widgets", "Widget", True, ["wd"])],
    )
    for spelling in ("widgets", "Widget", "wd"):
        assert fake_api_lab.objects.resource(spelling).kind == "Widget"
    with pytest.raises(LabError, match="This cluster serves no kind 'gadgets'"):
        fake_api_lab.objects.resource("gadgets")
