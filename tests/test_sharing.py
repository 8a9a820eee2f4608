"""Sharing a workspace server with members of its workspace, on JupyterHub's own sharing.

Through the real Hub (both passes): a member opens a shared server through the
proxy, a non-member cannot be given one, a recipient who leaves the workspace
loses it (on the owner's next read, on their own, and by the periodic check), and
removing a server removes its shares.
"""

import json
import re
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import ADMIN_TOKEN, admin_request, hidden_field, log_in, set_members, start_body, wait_for
from hub_shares import JSON, hub_shares, share

pytestmark = [pytest.mark.hub_version, pytest.mark.usefixtures("clean_servers")]

DEMO_MEMBERS = {"alice": ["alpha", "beta"], "bob": ["alpha"]}


@pytest.mark.usefixtures("real_servers")  # a real JupyterLab, behind its own login through the Hub
async def test_a_member_opens_a_server_shared_with_them_through_the_proxy(client, hub):
    alice, bob = client("alice"), client("bob")
    await alice.json("POST", "alpha/minimal")
    server = await alice.wait_ready("alpha/minimal")
    browser = log_in(hub, "bob")
    lab = hub.url + server["url"] + "doc"

    def bob_gets_in() -> bool:
        page = browser.get(lab)
        if page.status_code == 200 and "/hub/api/oauth2/authorize" in page.url:
            # someone else's server: the Hub asks him to authorize it first, as a person would
            scopes = re.findall(r'name="scopes" value="([^"]*)"', page.text)
            page = browser.post(page.url, data={"_xsrf": hidden_field(page.text, "_xsrf"), "scopes": scopes})
        return page.status_code == 200 and "/user/alice/alpha-minimal/" in page.url

    def bob_calls_it() -> int:
        """A new Hub token of bob's, to alice's server's API through the proxy (a new one: the server
        keeps what the Hub said of a token it has seen for a few minutes, JupyterHub's HubAuth cache)."""
        code, token = admin_request(hub, "POST", "/users/bob/tokens", {"note": "sharing test", "expires_in": 300})
        assert code == 201, token
        headers = {"Authorization": f"token {token['token']}"}
        try:
            return requests.get(hub.url + server["url"] + "api/status", headers=headers).status_code
        finally:
            admin_request(hub, "DELETE", f"/users/bob/tokens/{token['id']}")

    assert bob_calls_it() == 403  # not shared: alice's server refuses him
    code, state = await share(alice, "alpha/minimal", ["bob"])
    assert code == 200 and state == {"users": ["bob"], "workspace": False}
    assert hub_shares(hub, "alice") == ["bob/alpha-minimal"]
    code, listed = await bob.json("GET", "shared")
    assert code == 200 and listed == [
        {
            "owner": "alice",
            "name": "alpha-minimal",
            "workspace": "alpha",
            "image": "minimal",
            "display_name": "alpha/minimal",
            "url": "/user/alice/alpha-minimal/",
            "ready": True,
        }
    ]
    assert bob_calls_it() == 200 and bob_gets_in()  # with his token, and in a browser
    # sharing again changes nothing; the owner sees with whom it is shared
    code, state = await share(alice, "alpha/minimal", ["bob", "bob"])
    assert code == 200 and state == {"users": ["bob"], "workspace": False}
    assert (await alice.json("GET", "alpha/minimal/-/shares")) == (200, {"users": ["bob"], "workspace": False})
    # revoked: gone from the Hub and from bob's list
    code, state = await alice.json(
        "DELETE", "alpha/minimal/-/shares", body=json.dumps({"users": ["bob"]}), headers=JSON
    )
    assert code == 200 and state == {"users": [], "workspace": False}
    assert hub_shares(hub, "alice") == [] and (await bob.json("GET", "shared")) == (200, [])


async def test_only_members_may_be_given_a_share_and_a_refusal_changes_nothing(client, hub):
    alice = client("alice")
    code, body = await share(alice, "alpha/minimal", ["bob"])
    assert code == 404 and body["message"] == "You have no server for alpha/minimal: start it, then share it."
    await alice.json("POST", "beta/minimal")
    await alice.wait_ready("beta/minimal")
    refusals = [
        (["bob"], "Only members of workspace beta may be given a share: 'bob' is not."),
        (["bob", "nobody-such"], "Only members of workspace beta may be given a share: 'bob', 'nobody-such' are not."),
        (["x" * 300], "No such user: '" + "x" * 80 + "'…."),
        ([f"user{i}" for i in range(51)], "A server may be shared with at most 50 members."),
        (["alice"], "Your server is yours already: share it with other members."),
        ("bob", 'Name the members: {"users": ["name", ...]}.'),
        ([], 'Name the members: {"users": ["name", ...]}.'),
        ([3], 'Name the members: {"users": ["name", ...]}.'),
    ]
    for users, says in refusals:
        code, body = await share(alice, "beta/minimal", users)
        assert (code, body) == (400, {"status": 400, "message": says}), users
    code, body = await alice.json("POST", "beta/minimal/-/shares", body=b'{"users": ["bob"], "all": 1}', headers=JSON)
    assert code == 400 and body["message"] == 'A share takes only "users" and "workspace", not \'all\'.'
    code, body = await alice.json("POST", "beta/minimal/-/shares", body=b'{"workspace": "yes"}', headers=JSON)
    assert code == 400 and body["message"] == "workspace must be true or false."
    code, body = await alice.json("POST", "beta/minimal/-/shares", body=b"[", headers=JSON)
    assert code == 400 and body["message"] == "The request body is not valid JSON."
    # bob may not manage alice's shares, nor anyone a workspace he is not in
    code, _ = await share(client("bob"), "beta/minimal", ["alice"])
    assert code == 403
    assert hub_shares(hub, "alice") == []


async def test_a_recipient_who_leaves_the_workspace_loses_the_share(client, hub):
    alice, bob = client("alice"), client("bob")
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")

    # 1. on the owner's next read (in the background, moments later)
    assert (await share(alice, "alpha/minimal", ["bob"]))[0] == 200
    set_members(hub, {"alice": ["alpha", "beta"], "bob": []})
    assert (await alice.json("GET", ""))[0] == 200
    wait_for(lambda: hub_shares(hub, "alice") == [], timeout=15, message="the share to be revoked")

    # 2. on the recipient's own read, at once
    set_members(hub, DEMO_MEMBERS)
    assert (await share(alice, "alpha/minimal", ["bob"]))[0] == 200
    set_members(hub, {"alice": ["alpha", "beta"], "bob": []})
    assert (await bob.json("GET", "shared")) == (200, [])
    assert hub_shares(hub, "alice") == []

    # 3. with nobody reading: the periodic check (share_reconcile_interval, 3 s here)
    set_members(hub, DEMO_MEMBERS)
    assert (await share(alice, "alpha/minimal", ["bob"]))[0] == 200
    set_members(hub, {"alice": ["alpha", "beta"], "bob": []})
    began = time.monotonic()
    wait_for(lambda: hub_shares(hub, "alice") == [], timeout=20, message="the periodic check to revoke the share")
    assert time.monotonic() - began < 20


@pytest.mark.parametrize("status", [503, 429])
async def test_a_hub_that_cannot_answer_about_a_recipient_takes_nothing_away(client, hub, status):
    """A blip is not a departure: while the Hub refuses every read of bob's model, the periodic check
    and alice's reads cannot tell whether bob is a member. His share and his place in the workspace's
    group stay, a new share to him is refused as "cannot check" (not as "not a member"), and once the
    Hub answers again a real departure is acted on."""
    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")
    assert (await share(alice, "alpha/minimal", ["bob"]))[0] == 200
    code, _ = await alice.json("POST", "alpha/minimal/-/shares", body=b'{"workspace": true}', headers=JSON)
    assert code == 200
    group = "notebooks-workspace-alpha"
    shared = ["bob/alpha-minimal", f"group:{group}/alpha-minimal"]
    assert hub_shares(hub, "alice", "alpha-minimal") == shared
    assert group_members(hub, group) == ["alice", "bob"]
    await alice.json("POST", "beta/minimal")
    await alice.wait_ready("beta/minimal")

    bob_model = r"/users/bob$"
    hub.meter.refuse(bob_model, status)
    try:
        # the periodic check (3 s here) and alice's reads ask about bob, again and again, until the
        # service's last good read of bob (before the first refusal) is older than its cache (1 s)
        def refused_long_enough() -> bool:
            times = hub.meter.refused.get(bob_model, [])
            return len(times) >= 10 and times[-1] - times[0] > 2

        wait_for(refused_long_enough, timeout=60, interval=0.5, message="the checks to ask about bob")
        assert (await alice.json("GET", ""))[0] == 200
        assert hub_shares(hub, "alice", "alpha-minimal") == shared
        assert group_members(hub, group) == ["alice", "bob"]
        # a new share cannot be checked: said so, and nothing is shared (nor refused as a non-member)
        code, body = await share(alice, "beta/minimal", ["bob"])
        assert code == 503, body
        assert body["message"].startswith("Cannot check whether 'bob' is a member of workspace beta right now")
        assert hub_shares(hub, "alice", "beta-minimal") == []
    finally:
        hub.meter.allow()
    # the Hub answers again, and bob has really left: his share and his place in the group go
    set_members(hub, {"alice": ["alpha", "beta"], "bob": []})
    wait_for(lambda: hub_shares(hub, "alice") == shared[1:], timeout=30, message="bob's share to be revoked")
    wait_for(lambda: group_members(hub, group) == ["alice"], timeout=30, message="bob to leave the group")


async def test_stop_keeps_a_servers_shares_and_remove_removes_them(client, hub):
    alice, bob = client("alice"), client("bob")
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")
    assert (await share(alice, "alpha/minimal", ["bob"]))[0] == 200
    for _ in range(2):  # stopped and started again, twice: still shared, with its options
        assert (await alice.json("DELETE", "alpha/minimal"))[0] in (202, 204)
        wait_for(lambda: not admin_request(hub, "GET", "/users/alice")[1]["servers"], message="stopped")
        code, listed = await alice.json("GET", "")
        assert code == 200 and [(s["name"], s["stopped"]) for s in listed] == [("alpha-minimal", True)]
        assert hub_shares(hub, "alice") == ["bob/alpha-minimal"]
        await alice.json("POST", "alpha/minimal")
        await alice.wait_ready("alpha/minimal")
        assert (await alice.json("GET", "alpha/minimal/-/shares")) == (200, {"users": ["bob"], "workspace": False})
        code, shared = await bob.json("GET", "shared")
        assert code == 200 and [s["name"] for s in shared] == ["alpha-minimal"]
    # a bad remove changes nothing
    code, body = await alice.json("DELETE", "alpha/minimal?remove=yes")
    assert code == 400 and body["message"].startswith("remove must be true")
    assert (await alice.json("GET", "alpha/minimal"))[1]["ready"] is True
    # removed: gone from the Hub with its shares; started again, it is shared with nobody
    assert (await alice.json("DELETE", "alpha/minimal?remove=true"))[0] in (202, 204)
    wait_for(lambda: hub_shares(hub, "alice") == [], timeout=15, message="the shares to go with the server")

    def removed() -> bool:
        model = admin_request(hub, "GET", "/users/alice?include_stopped_servers=1")[1]
        return "alpha-minimal" not in (model.get("servers") or {})

    wait_for(removed, message="removed")
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")
    assert (await alice.json("GET", "alpha/minimal/-/shares")) == (200, {"users": [], "workspace": False})
    assert (await bob.json("GET", "shared")) == (200, [])


async def test_share_calls_are_counted_by_endpoint_never_by_user_or_server(client):
    """The Hub-call metric's endpoint label names the kind of path, not whose: one series per user
    and server would grow without bound (each histogram series is about 1.7 KB, and a scraper's load)."""
    alice, bob = client("alice"), client("bob")
    scraper = client(None)
    scraper.extra_headers = {"Authorization": f"token {ADMIN_TOKEN}"}
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")
    assert (await share(alice, "alpha/minimal", ["bob"]))[0] == 200
    assert (await alice.json("GET", "alpha/minimal/-/shares"))[0] == 200
    assert (await bob.json("GET", "shared"))[0] == 200
    page = (await scraper.request("GET", "metrics")).body.decode()
    endpoints = {
        sample.labels["endpoint"]
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name == "notebooks_service_hub_request_duration_seconds_count"
    }
    assert {"/shares/{owner}/{server}", "/users/{name}/shared"} <= endpoints, endpoints
    assert not [e for e in endpoints if re.search(r"alice|bob|alpha", e)], endpoints


def test_a_form_shares_and_revokes_and_the_pages_say_so(hub):
    owner, member = log_in(hub, "alice"), log_in(hub, "bob")
    page = owner.get(hub.service_url)
    xsrf = hidden_field(page.text, "_xsrf")
    owner.post(hub.service_url, data={"_xsrf": xsrf, "workspace": "alpha", "image": "minimal"})
    details = hub.service_url + "alpha/minimal/-/details"
    page = wait_for(lambda: (r := owner.get(details)).status_code == 200 and "running" in r.text and r, timeout=30)
    assert 'id="shared-with-nobody"' in page.text
    shared = owner.post(hub.service_url + "alpha/minimal/-/shares", data={"_xsrf": xsrf, "users": "bob"})
    assert shared.url == details and '<span class="badge text-bg-light border">bob</span>' in shared.text
    # bob's list has a section for it, which opens alice's server
    listing = member.get(hub.service_url).text
    assert 'data-shared="alice/alpha-minimal"' in listing and 'href="/user/alice/alpha-minimal/"' in listing
    # a non-member, by form: an error page that names him, and nothing shared
    refused = owner.post(hub.service_url + "alpha/minimal/-/shares", data={"_xsrf": xsrf, "users": "mallory"})
    assert refused.status_code == 400 and "&#39;mallory&#39; is not." in refused.text
    revoked = owner.post(
        hub.service_url + "alpha/minimal/-/shares", data={"_xsrf": xsrf, "action": "revoke", "users": "bob"}
    )
    assert 'id="shared-with-nobody"' in revoked.text and hub_shares(hub, "alice") == []
    assert "Shared with me" not in member.get(hub.service_url).text
    # without the XSRF token, nothing
    assert owner.post(hub.service_url + "alpha/minimal/-/shares", data={"users": "bob"}).status_code == 403
    assert hub_shares(hub, "alice") == []


def group_members(hub, group: str) -> list[str] | None:
    code, model = admin_request(hub, "GET", f"/groups/{group}")
    return sorted(model["users"]) if code == 200 else None


async def test_a_workspace_share_reaches_members_who_join_later_and_leaves_with_those_who_go(client, hub):
    alice, bob = client("alice"), client("bob")
    set_members(hub, {"alice": ["alpha", "beta"], "bob": []})  # bob is no member of alpha yet
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")
    code, state = await alice.json("POST", "alpha/minimal/-/shares", body=b'{"workspace": true}', headers=JSON)
    assert code == 200 and state == {"users": [], "workspace": True}
    assert group_members(hub, "notebooks-workspace-alpha") == ["alice"]  # the Hub group the share goes to
    assert (await bob.json("GET", "shared")) == (200, [])

    # bob joins alpha: his next look at what is shared with him finds it (and puts him in the group)
    set_members(hub, DEMO_MEMBERS)
    code, listed = await bob.json("GET", "shared")
    assert code == 200 and [(s["owner"], s["name"]) for s in listed] == [("alice", "alpha-minimal")]
    assert group_members(hub, "notebooks-workspace-alpha") == ["alice", "bob"]

    # he leaves: out of the group on his own read, or by the periodic check
    set_members(hub, {"alice": ["alpha", "beta"], "bob": []})
    assert (await bob.json("GET", "shared")) == (200, [])
    assert group_members(hub, "notebooks-workspace-alpha") == ["alice"]
    set_members(hub, DEMO_MEMBERS)
    assert [s["name"] for s in (await bob.json("GET", "shared"))[1]] == ["alpha-minimal"]
    set_members(hub, {"alice": ["alpha", "beta"], "bob": []})
    wait_for(lambda: group_members(hub, "notebooks-workspace-alpha") == ["alice"], timeout=20, message="the check")

    # turned off: nobody but alice
    set_members(hub, DEMO_MEMBERS)
    code, state = await alice.json("DELETE", "alpha/minimal/-/shares", body=b'{"workspace": true}', headers=JSON)
    assert code == 200 and state == {"users": [], "workspace": False}
    assert (await bob.json("GET", "shared")) == (200, [])


async def test_a_workspace_share_where_none_may_be_made_is_refused_before_anything_is_asked():
    from notebooks_service.servers import ServerRequest
    from notebooks_service.sharing import Sharing
    from notebooks_service.workspaces import StaticWorkspacePolicy

    class NoHub:
        def __getattr__(self, name):
            raise AssertionError(f"the Hub was asked ({name})")

    sharing = Sharing(hub=NoHub(), policy=StaticWorkspacePolicy())
    assert not sharing.manage_workspace_groups  # off by default: it needs admin:groups
    alice = {"name": "alice", "servers": {"alpha-minimal": {}}, "stopped_servers": {}}
    request = ServerRequest(alice, "alpha", {"name": "minimal"}, None, "alpha-minimal")
    with pytest.raises(Exception, match="Sharing with a whole workspace is off here") as refused:
        await sharing.share(request, None, workspace=True)
    assert refused.value.status_code == 403


async def test_with_the_hub_groups_policy_a_workspace_share_goes_to_the_workspaces_own_group(hub):
    from notebooks_service.hub import HubClient
    from notebooks_service.servers import ServerRequest
    from notebooks_service.sharing import Sharing
    from notebooks_service.workspaces import HubGroupsWorkspacePolicy

    # alice's server in gamma (the guard's members say she may), and gamma's Hub group: alice and bob
    set_members(hub, {"alice": ["alpha", "beta", "gamma"], "bob": ["alpha"]})
    assert admin_request(hub, "POST", "/groups/ws-gamma", {"users": ["alice", "bob"]})[0] in (201, 409)
    started = admin_request(
        hub, "POST", "/users/alice/servers/gamma-minimal", start_body(hub, {"workspace": "gamma", "image": "minimal"})
    )
    assert started[0] in (201, 202), started
    wait_for(lambda: admin_request(hub, "GET", "/users/alice")[1]["servers"].get("gamma-minimal", {}).get("ready"))
    client = HubClient(api_url=f"{hub.url}/hub/api", api_token=ADMIN_TOKEN)  # as the service's role may
    try:
        policy = HubGroupsWorkspacePolicy(group_template="ws-{workspace}")
        sharing = Sharing(hub=client, policy=policy)
        assert sharing.workspace_group("gamma") == ("ws-gamma", False)  # the policy's own group, not kept by us
        request = ServerRequest(
            await client.get_user("alice", fresh=True), "gamma", {"name": "minimal"}, None, "gamma-minimal"
        )
        assert await sharing.share(request, None, workspace=True) == {"users": [], "workspace": True}
        code, shared = admin_request(hub, "GET", "/users/bob/shared")
        assert code == 200 and [s["server"]["name"] for s in shared["items"]] == ["gamma-minimal"]  # via ws-gamma
        assert group_members(hub, "notebooks-workspace-gamma") is None  # no group of the service's
        assert await sharing.revoke(request, None, workspace=True) == {"users": [], "workspace": False}
        assert admin_request(hub, "GET", "/users/bob/shared")[1]["items"] == []
    finally:
        client.close()
        admin_request(hub, "DELETE", "/groups/ws-gamma")


async def test_a_kept_group_is_kept_from_the_records_or_from_one_listing_of_users(hub):
    """How a kept workspace group finds its members without a Hub read per member: a policy that
    names every member (static) adds them in one call, leaving out those the Hub does not know
    yet (and not trying them again at once); another policy (claims, say) is asked about each
    member of the group from one paged listing of the Hub's users."""
    from notebooks_service.hub import HubClient
    from notebooks_service.sharing import Sharing
    from notebooks_service.workspaces import StaticWorkspacePolicy, WorkspacePolicy

    group = "notebooks-workspace-zeta"
    admin_request(hub, "DELETE", f"/groups/{group}")
    assert admin_request(hub, "POST", f"/groups/{group}")[0] == 201
    client = HubClient(api_url=f"{hub.url}/hub/api", api_token=ADMIN_TOKEN)
    asked = []
    real_request = client.api_request

    async def counted(method, path, *args, **kwargs):
        asked.append((method, path.split("?")[0]))
        return await real_request(method, path, *args, **kwargs)

    client.api_request = counted
    try:
        static = StaticWorkspacePolicy(members={"alice": ["zeta"], "bob": ["zeta"], "never-logged-in": ["zeta"]})
        sharing = Sharing(hub=client, policy=static, manage_workspace_groups=True)
        await sharing.keep_group("zeta")
        assert group_members(hub, group) == ["alice", "bob"]
        assert not any(path.startswith("/users") for _, path in asked)  # no user read
        asked.clear()
        await sharing.keep_group("zeta")  # nothing to change, and the unknown member is not tried again
        assert asked == [("GET", f"/groups/{group}")]

        class Claims(WorkspacePolicy):
            """Members only the user models say (as claims in auth_state do): bob has left zeta."""

            async def workspaces(self, user):
                return {"zeta"} if user["name"] == "alice" else set()

        asked.clear()
        await Sharing(hub=client, policy=Claims(), manage_workspace_groups=True).keep_group("zeta")
        assert group_members(hub, group) == ["alice"]
        assert [path for _, path in asked if path.startswith("/users")] == ["/users"]  # one listing (one page here)
    finally:
        client.close()
        admin_request(hub, "DELETE", f"/groups/{group}")
