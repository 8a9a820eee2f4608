"""Membership over time (notebooks_service/reconciler.py), through the session's real Hub, whose
reconciler (`notebooks-service reconcile`, a Hub-managed service) checks every 3 s.

A member removed from a workspace loses their server there (stopped, not removed) and what was
shared with them there; a Hub that cannot answer about them changes nothing; added back, they
start the server again.
"""

import asyncio

import pytest
from traitlets.config import Config

from notebooks_service.pages import in_words

from conftest import ADMIN_TOKEN, admin_request, set_members, wait_for
from hub_shares import hub_shares, share
from reconciler_metrics import reconciler_counts

pytestmark = [pytest.mark.hub_version, pytest.mark.usefixtures("clean_servers")]

ALICE_LEFT_ALPHA = {"alice": ["beta"], "bob": ["alpha"]}


def servers_of(hub, user: str) -> tuple[dict, dict]:
    """(active, stopped) servers of ``user``, by name, as the Hub has them."""
    code, model = admin_request(hub, "GET", f"/users/{user}?include_stopped_servers=1")
    assert code == 200, model
    servers = model.get("servers") or {}
    active = {n: s for n, s in servers.items() if n and (s.get("ready") or s.get("pending"))}
    stopped = {n: s for n, s in servers.items() if n and n not in active}
    return active, stopped


async def test_a_member_who_leaves_loses_their_server_and_their_shares_and_comes_back(client, hub):
    alice, bob = client("alice"), client("bob")
    for who in (alice, bob):
        await who.json("POST", "alpha/minimal")
        await who.wait_ready("alpha/minimal")
    await alice.json("POST", "beta/minimal")
    await alice.wait_ready("beta/minimal")
    assert (await share(alice, "alpha/minimal", ["bob"]))[0] == 200
    assert (await share(bob, "alpha/minimal", ["alice"]))[0] == 200

    before = reconciler_counts(hub)
    set_members(hub, ALICE_LEFT_ALPHA)
    # within an interval or two: her alpha server stops (and stays, stopped, with its options)
    wait_for(lambda: "alpha-minimal" in servers_of(hub, "alice")[1], timeout=30, message="alice's alpha server to stop")
    active, stopped = servers_of(hub, "alice")
    assert set(active) == {"beta-minimal"}  # her other workspace's server runs on
    assert stopped["alpha-minimal"]["user_options"]["workspace"] == "alpha"

    # her list shows it stopped, as hers, without its way in (once its cached model is renewed)
    async def alice_rows() -> dict:
        code, listed = await alice.json("GET", "")
        assert code == 200, listed
        return {s["name"]: s for s in listed}

    for _ in range(40):
        rows = await alice_rows()
        if rows["alpha-minimal"]["stopped"]:
            break
        await asyncio.sleep(0.25)
    assert (rows["alpha-minimal"]["member"], rows["alpha-minimal"]["url"], rows["alpha-minimal"]["stopped"]) == (
        False,
        None,
        True,
    )
    assert rows["beta-minimal"]["member"] is True
    # every action on it but Stop is refused: it is not hers to open, keep running or share now
    for method, path in [
        ("GET", "alpha/minimal"),
        ("POST", "alpha/minimal/-/activity"),
        ("GET", "alpha/minimal/-/shares"),
    ]:
        code, body = await alice.json(method, path)
        assert code == 403 and "not a member of workspace 'alpha'" in body["message"], (path, body)
    # the shares of it are gone, and bob's share to her too; bob's server runs on
    wait_for(lambda: hub_shares(hub, "bob") == [] and hub_shares(hub, "alice") == [], timeout=15, message="shares")
    assert set(servers_of(hub, "bob")[0]) == {"alpha-minimal"}
    # operators see it: a check that found her gone, a server stopped, bob's share to her removed
    after = reconciler_counts(hub)

    def grew(name: str, **labels) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("notebooks_service_servers_stopped_for_leaving_total") == 1
    assert grew("notebooks_service_membership_checks_total", outcome="left") >= 1
    assert grew("notebooks_service_shares_revoked_total") >= 1

    # added back, she starts it again, with its name and options
    set_members(hub, None)
    code, _ = await alice.json("POST", "alpha/minimal")
    assert code in (201, 202)
    assert (await alice.wait_ready("alpha/minimal"))["workspace"] == "alpha"


@pytest.mark.parametrize("status", [503, 429])
async def test_a_hub_that_cannot_answer_about_an_owner_stops_nothing(client, hub, status):
    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")
    listing = r"/users$"  # the active users, with their models: what the reconciler reads membership from
    hub.meter.refuse(listing, status)
    try:
        set_members(hub, ALICE_LEFT_ALPHA)  # she has left, but nobody can tell

        def checked_for_long() -> bool:  # several checks, each refused
            times = hub.meter.refused.get(listing, [])
            return len(times) >= 10 and times[-1] - times[0] > 7

        wait_for(checked_for_long, timeout=60, interval=0.5, message="the reconciler to ask about alice")
        assert set(servers_of(hub, "alice")[0]) == {"alpha-minimal"}
    finally:
        hub.meter.allow()
    # the Hub answers again: she has left, and her server stops
    wait_for(lambda: "alpha-minimal" in servers_of(hub, "alice")[1], timeout=30, message="alice's server to stop")


async def test_a_leavers_server_runs_on_for_the_grace_and_is_stopped_after_it(client, hub):
    """Reconciler.leaver_grace, with a reconciler of the test's own against the session's Hub (whose
    own reconciler, without a grace, still sees alice as a member): her server runs on while the
    grace lasts, check after check, and is stopped at the first check after it."""
    from notebooks_service.hub import HubClient
    from notebooks_service.reconciler import Reconciler, leaver_stop_bound
    from notebooks_service.sharing import Sharing
    from notebooks_service.workspaces import StaticWorkspacePolicy

    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")
    hub_client = HubClient(api_url=f"{hub.url}/hub/api/", api_token=ADMIN_TOKEN)
    left = StaticWorkspacePolicy(members=ALICE_LEFT_ALPHA)  # as this reconciler's policy says
    reconciler = Reconciler(hub=hub_client, sharing=Sharing(hub=hub_client, policy=left), leaver_grace=600)
    try:
        for _ in range(2):
            await reconciler.check_once()
            assert "alpha-minimal" in servers_of(hub, "alice")[0]  # within the grace: runs on
        # as if the grace had passed since the first check found her gone
        reconciler._left_since = {key: since - 600 for key, since in reconciler._left_since.items()}
        await reconciler.check_once()
        wait_for(lambda: "alpha-minimal" in servers_of(hub, "alice")[1], timeout=30, message="her server to stop")
    finally:
        hub_client.close()
    # what the service's pages tell a leaver: the interval and the grace
    config = Config({"Reconciler": {"membership_check_interval": 60, "leaver_grace": 600}})
    assert leaver_stop_bound(config) == 660 and in_words(660) == "11 minutes"
