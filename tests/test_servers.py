"""The launcher without a Hub: checks, the server model, the list, a fresh identity."""

import pytest

from notebooks_service.diagnostics import NoDiagnostics
from notebooks_service.errors import InvalidRequest, NotAMember, NotFound, TokenExpired, Unauthorized
from notebooks_service.images import normalise_catalogue
from notebooks_service.servers import Launcher, check_notebook_path
from notebooks_service.workspaces import StaticWorkspacePolicy

CATALOGUE = normalise_catalogue({"python": "quay.io/jupyter/scipy-notebook:2025-01-01"})


class Caller:
    """An identity whose model the test sets, counting renewals."""

    def __init__(self, name="alice", servers=None):
        self.model = {"name": name, "groups": [], "servers": servers or {}, "stopped_servers": {}}
        self.renewals = 0

    async def caller_model(self):
        return self.model

    async def renew_identity(self):
        self.renewals += 1


def launcher(policy=None) -> Launcher:
    return Launcher(
        hub=None,
        policy=policy or StaticWorkspacePolicy(members={"alice": ["alpha"]}),
        catalogue=CATALOGUE,
        resource_classes={},
        prefix="/services/notebooks/",
        diagnostics=NoDiagnostics(),
    )


async def test_a_request_is_checked_before_anything_is_asked_of_the_hub():
    request = await launcher().check(Caller(), "alpha", "python", "reports/a.ipynb")
    assert (request.name, request.notebook, request.display_name) == ("alpha-python", "reports/a.ipynb", "alpha/python")
    assert request.server is None
    with pytest.raises(NotAMember):
        await launcher().check(Caller(), "beta", "python")
    with pytest.raises(NotFound, match="Unknown image"):
        await launcher().check(Caller(), "alpha", "cobol")
    with pytest.raises(InvalidRequest, match="Invalid workspace name"):
        await launcher().check(Caller(), "Alpha", "python")


@pytest.mark.parametrize("path", ["/etc/passwd", "a/../b", "a//b", "a\\b", "a\x00b", "a\nb", "./a"])
def test_notebook_paths_stay_inside_the_server(path):
    with pytest.raises(InvalidRequest):
        check_notebook_path(path)


def test_the_model_and_the_list_hold_only_this_services_servers():
    servers = {
        "alpha-python": {
            "user_options": {"workspace": "alpha", "image": "python"},
            "ready": True,
            "url": "/user/alice/alpha-python/",
        },
        "other": {"user_options": {"workspace": "alpha", "image": "python"}},  # not the name of that pair
        "": {"user_options": {}},  # the default server
    }
    [model] = launcher().servers({"servers": servers}, ["alpha"])
    assert model["status_url"] == "/services/notebooks/alpha/python"
    assert (model["member"], model["url"]) == (True, "/user/alice/alpha-python/")
    # in a workspace she has left: listed, without the way in
    [left] = launcher().servers({"servers": servers}, ["beta"])
    assert (left["member"], left["url"], left["ready"]) == (False, None, True)
    assert model["progress_url"] == "/services/notebooks/alpha/python/-/progress"
    assert launcher().model("alpha-python", servers["alpha-python"], "a b.ipynb")["notebook_url"] == (
        "/user/alice/alpha-python/lab/tree/a%20b.ipynb"
    )


class ExpiringPolicy(StaticWorkspacePolicy):
    """A policy whose identity token has expired until the caller renews it."""

    async def check_member(self, user, workspace):
        if not user.get("renewed"):
            raise TokenExpired("expired")
        await super().check_member(user, workspace)


async def test_an_expired_identity_is_renewed_once_then_the_caller_is_told_to_log_in():
    caller = Caller()
    original_renew = caller.renew_identity

    async def renew():
        await original_renew()
        caller.model = {**caller.model, "renewed": True}

    caller.renew_identity = renew
    policy = ExpiringPolicy(members={"alice": ["alpha"]})
    request = await launcher(policy).check(caller, "alpha", "python")
    assert caller.renewals == 1 and request.user.get("renewed")  # asked again, with the renewed model
    stale = Caller()  # the Hub could not renew it
    with pytest.raises(Unauthorized, match="log in again"):
        await launcher(policy).check(stale, "alpha", "python")
    assert stale.renewals == 1
