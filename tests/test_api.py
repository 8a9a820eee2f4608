"""End to end, as a JSON client with a Hub API token, through the Hub's proxy."""

import asyncio
import json

import pytest

from conftest import ADMIN_TOKEN, admin_request, hub_version, set_refresh_failure, set_spawn_delay, wait_for

pytestmark = [pytest.mark.hub_version, pytest.mark.usefixtures("clean_servers")]


async def test_start_then_reach_the_server_through_the_proxy(client, hub):
    alice = client("alice")
    code, model = await alice.json("POST", "alpha/python")
    assert code in (201, 202)
    assert model["name"] == "alpha-python"
    assert model["workspace"] == "alpha" and model["image"] == "python"
    assert model["progress_url"] == "/services/notebooks/alpha/python/-/progress"
    assert model["hub_progress_url"].endswith("/users/alice/servers/alpha-python/progress")
    for key in ("ready", "pending", "url", "started", "last_activity"):
        assert key in model

    ready = await alice.wait_ready("alpha/python")
    assert ready["pending"] is None
    # the server answers through the proxy at the URL we gave (tests/hub_spawner.py: in the Hub, or JupyterLab)
    response = await alice.request("GET", hub.url + ready["url"] + "api/status")
    assert response.code == 200

    # a second POST of a ready server is 201 with the same server
    code, again = await alice.json("POST", "alpha/python")
    assert code == 201 and again["name"] == "alpha-python" and again["started"] == ready["started"]

    # the Hub knows the readable name and the options
    _, hub_model = admin_request(hub, "GET", "/users/alice")
    server = hub_model["servers"]["alpha-python"]
    assert server["user_options"] == {"workspace": "alpha", "image": "python", "resource_class": "small"}
    if hub_version(hub) >= (6,):  # JupyterHub 5 has no display names
        assert server["display_name"] == "alpha/python"


async def test_list_shows_only_this_users_servers_of_this_service(client, hub):
    alice, bob = client("alice"), client("bob")
    assert (await alice.json("GET", ""))[1] == []
    await alice.json("POST", "alpha/minimal")
    code, servers = await alice.json("GET", "")
    assert code == 200
    assert [s["name"] for s in servers] == ["alpha-minimal"]
    assert (await bob.json("GET", ""))[1] == []


async def test_each_user_gets_their_own_server_and_cannot_touch_another(client, hub):
    alice, bob = client("alice"), client("bob")
    await alice.json("POST", "alpha/minimal")
    code, _ = await bob.json("GET", "alpha/minimal")
    assert code == 404  # bob has none; alice's is invisible to him
    code, _ = await bob.json("DELETE", "alpha/minimal")
    assert code == 204  # stopping his own (absent) server...
    alice_model = await alice.wait_ready("alpha/minimal")  # ...left alice's alone
    code, bob_model = await bob.json("POST", "alpha/minimal")
    assert code in (201, 202)
    assert bob_model["url"] != alice_model["url"] and "/user/bob/" in bob_model["url"]


async def test_concurrent_double_post_starts_one_server(client, hub):
    alice = client("alice")
    results = await asyncio.gather(*(alice.json("POST", "alpha/python") for _ in range(3)))
    codes = [code for code, _ in results]
    assert all(code in (201, 202) for code in codes), results
    assert {model["name"] for _, model in results} == {"alpha-python"}
    assert len({model["started"] for _, model in results}) == 1
    _, model = admin_request(hub, "GET", "/users/alice")
    assert list(model["servers"]) == ["alpha-python"]


async def test_get_unknown_server_is_404_json(client):
    code, body = await client("alice").json("GET", "beta/python")
    assert code == 404
    assert body == {"status": 404, "message": "You have no server for beta/python."}


async def test_non_member_gets_403_and_nothing_starts(client, hub):
    bob = client("bob")
    code, body = await bob.json("POST", "beta/python")
    assert code == 403
    assert body["status"] == 403 and "not a member of workspace 'beta'" in body["message"]
    assert (await bob.json("GET", "beta/python"))[0] == 403
    _, model = admin_request(hub, "GET", "/users/bob")
    assert model["servers"] == {}


async def test_unknown_image_is_404_naming_the_catalogue(client):
    code, body = await client("alice").json("POST", "alpha/cobol")
    assert code == 404
    assert "Unknown image 'cobol'" in body["message"] and "minimal, python" in body["message"]


@pytest.mark.parametrize("workspace", ["Alpha", "al_pha", "-alpha", "a" * 61, "al%2Fpha"])
async def test_invalid_workspace_is_400(client, workspace):
    code, body = await client("alice").json("POST", f"{workspace}/python")
    assert code == 400, body
    assert body["status"] == 400 and "Invalid workspace name" in body["message"]


@pytest.mark.parametrize("notebook", ["a/..%2F..%2Fetc", "%2Fetc/passwd", "a//b", "a%5Cb"])
async def test_bad_notebook_path_is_400(client, notebook):
    code, body = await client("alice").json("POST", f"alpha/python/{notebook}")
    assert code == 400, body
    assert "Invalid notebook path" in body["message"]


async def test_notebook_path_opens_in_the_server(client):
    code, model = await client("alice").json("POST", "alpha/minimal/work/my%20notebook.ipynb")
    assert code in (201, 202)
    assert model["notebook_url"] == model["url"] + "lab/tree/work/my%20notebook.ipynb"


async def test_delete_stops_and_is_idempotent(client, hub):
    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")
    code, _ = await alice.json("DELETE", "alpha/minimal")
    assert code in (202, 204)

    async def gone():
        return (await alice.json("GET", "alpha/minimal"))[0] == 404

    deadline = asyncio.get_running_loop().time() + 30
    while not await gone():
        assert asyncio.get_running_loop().time() < deadline, "server did not stop"
        await asyncio.sleep(0.2)
    assert (await alice.json("DELETE", "alpha/minimal"))[0] == 204
    # stopped, not removed: kept in the Hub with its options, to start again
    _, model = admin_request(hub, "GET", "/users/alice?include_stopped_servers=1")
    assert model["servers"]["alpha-minimal"]["user_options"]["workspace"] == "alpha"
    # removed: gone from the Hub; again, nothing to remove is no error
    # (as the Hub's own API takes it, {"remove": true}; then as a query, with nothing left to remove)
    for asked in ({"path": "alpha/minimal", "body": b'{"remove": true}'}, {"path": "alpha/minimal?remove=true"}):
        code, _ = await alice.json(
            "DELETE", asked["path"], body=asked.get("body"), headers={"Content-Type": "application/json"}
        )
        assert code == 204
        _, model = admin_request(hub, "GET", "/users/alice?include_stopped_servers=1")
        assert "alpha-minimal" not in model["servers"]


async def test_delete_of_a_pending_server(client, hub):
    alice = client("alice")
    set_spawn_delay(hub, 30)
    code, model = await alice.json("POST", "alpha/python")
    assert code == 202 and model["pending"] == "spawn"
    code, _ = await alice.json("DELETE", "alpha/python")
    assert code in (202, 204)

    def stopped():
        _, model = admin_request(hub, "GET", "/users/alice")
        return "alpha-python" not in model["servers"]

    wait_for(stopped, timeout=30, message="the pending server to stop")
    set_spawn_delay(hub, None)
    # and it can start again afterwards
    code, _ = await alice.json("POST", "alpha/python")
    assert code in (201, 202)
    await alice.wait_ready("alpha/python")


async def test_user_endpoint_returns_the_hub_user_model(client):
    code, model = await client("bob").json("GET", "user")
    assert code == 200
    assert model["name"] == "bob" and "groups" in model and "servers" in model


async def test_requests_without_a_login_are_401_json(client):
    anonymous = client(None)
    for method, path in [("GET", ""), ("GET", "user"), ("POST", "alpha/python"), ("DELETE", "alpha/python")]:
        code, body = await anonymous.json(method, path)
        assert code == 401, (method, path)
        assert body["status"] == 401 and "Authentication required" in body["message"]


async def test_invalid_token_is_401(client):
    c = client(None)
    code, body = await c.json("GET", "", headers={"Authorization": "token not-a-real-token"})
    assert code == 401 and body["status"] == 401


async def test_unknown_path_is_404_json(client):
    code, body = await client("alice").json("GET", "no-such-page")
    assert code == 404 and body["status"] == 404


async def test_health_needs_no_login(client):
    code, body = await client(None).json("GET", "health")
    assert (code, body) == (200, {"status": "ok"})


async def test_bearer_tokens_work_like_token_headers(client, tokens):
    c = client(None)
    code, model = await c.json("GET", "user", headers={"Authorization": f"Bearer {tokens['alice']}"})
    assert code == 200 and model["name"] == "alice"


async def test_a_service_token_without_access_is_refused(client):
    code, body = await client(None).json("GET", "", headers={"Authorization": f"token {ADMIN_TOKEN}"})
    assert code == 403 and body["status"] == 403


async def test_a_trailing_newline_in_a_workspace_is_a_400_for_every_method(client):
    alice = client("alice")
    for method in ("GET", "POST", "DELETE"):
        code, body = await alice.json(method, "alpha%0A/python")
        assert code == 400 and "Invalid workspace name" in body["message"], (method, code, body)


async def test_messages_are_shown_as_written(client):
    code, body = await client("alice").json("GET", "alpha/py%25thon")
    assert code == 404 and "'py%thon'" in body["message"] and "%%" not in body["message"]


# a JWT's shape (our log filter masks it), with a payload too short for log_check's JWT pattern: the
# Hub's own log line quotes it, and that line is the Hub's (OAuthenticator's) doing, not ours
EXPIRED_ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOjF9.c2lnbmF0dXJlLW5vdC1yZWFs"


async def test_a_hub_500_quoting_a_token_reaches_neither_the_user_nor_our_log(client, hub):
    with open(hub.log_path) as f:
        f.seek(0, 2)
        start = f.tell()
    set_refresh_failure(hub, EXPIRED_ID_TOKEN)
    try:
        code, body = await client("alice").json("POST", "alpha/python")
    finally:
        set_refresh_failure(hub, None)
    assert code == 502, body
    assert EXPIRED_ID_TOKEN not in json.dumps(body) and "decode" not in body["message"]
    assert "answered 500" in body["message"] and "log in again" in body["message"]
    with open(hub.log_path) as f:
        f.seek(start)
        quoting = [line for line in f if EXPIRED_ID_TOKEN in line]
    # the Hub's own lines say it (so ours would be seen); none of the service's does
    assert quoting
    assert all(" JupyterHub " in line for line in quoting), quoting
