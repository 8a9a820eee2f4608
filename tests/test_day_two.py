"""A running server, the day after: its page, its log for people, keeping it from the culler, restarting it.

Through the real Hub (both passes of `make test`): a restart in another class and back,
refusals that change nothing, "Keep running" moving the Hub's last activity, and the
pages a browser gets (the browser itself is tests/test_browser.py's).
"""

import datetime
import html
import json

import pytest

from conftest import admin_request, hidden_field, log_in, set_idle_minutes, set_spawn_delay, start_body, wait_for

pytestmark = [pytest.mark.hub_version, pytest.mark.usefixtures("clean_servers")]


PYTHON_LARGE = {"workspace": "alpha", "image": "python", "resource_class": "large"}

#: what Chromium sends when it navigates
AS_A_BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def hub_server(hub, user: str, name: str) -> dict | None:
    _, model = admin_request(hub, "GET", f"/users/{user}")
    return (model.get("servers") or {}).get(name)


def parse(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- restart ---------------------------------------------------------------------------------------


async def test_a_restart_runs_the_server_again_in_another_class_then_in_the_one_it_ran_with(client, hub):
    alice = client("alice")
    code, model = await alice.json("POST", "alpha/python?resource_class=large")
    assert code in (201, 202), model
    first = await alice.wait_ready("alpha/python")

    # another class: the server stops and starts again as small
    code, model = await alice.json("POST", "alpha/python/-/restart?resource_class=small")
    assert code == 202 and model["resource_class"] == "small", model
    second = await alice.wait_ready("alpha/python")
    assert second["resource_class"] == "small" and second["started"] != first["started"]
    assert hub_server(hub, "alice", "alpha-python")["user_options"]["resource_class"] == "small"

    # no class: the one it ran with, not the image's default (which is small too: go through large)
    code, model = await alice.json(
        "POST",
        "alpha/python/-/restart",
        body=json.dumps({"resource_class": "large"}),
        headers={"Content-Type": "application/json"},
    )
    assert code == 202 and model["resource_class"] == "large", model
    third = await alice.wait_ready("alpha/python")
    code, model = await alice.json("POST", "alpha/python/-/restart")
    assert code == 202 and model["resource_class"] == "large", model
    fourth = await alice.wait_ready("alpha/python")
    assert fourth["started"] != third["started"]
    assert hub_server(hub, "alice", "alpha-python")["user_options"] == {
        "workspace": "alpha",
        "image": "python",
        "resource_class": "large",
    }
    # still one server of (alice, alpha, python)
    code, listing = await alice.json("GET", "")
    assert [s["name"] for s in listing] == ["alpha-python"]


async def test_a_plain_start_in_another_class_is_still_a_409_that_names_the_restart(client):
    alice = client("alice")
    await alice.json("POST", "alpha/python?resource_class=large")
    await alice.wait_ready("alpha/python")
    code, body = await alice.json("POST", "alpha/python?resource_class=small")
    assert code == 409 and body["message"] == (
        "This server runs with the class 'large': restart it to run it with 'small'"
        " (POST <server>/-/restart?resource_class=small), or stop it first."
    )


async def test_a_restart_that_cannot_be_refuses_before_anything_stops(client, hub):
    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    before = await alice.wait_ready("alpha/minimal")
    refusals = [
        ("alpha/minimal/-/restart?resource_class=large", 400, "Resource class 'large' is not offered for 'minimal'"),
        ("alpha/minimal/-/restart?resource_class=" + "x" * 5000, 400, "is not offered"),
        ("alpha/no-such-image/-/restart", 404, "Unknown image"),
        ("gamma/minimal/-/restart", 403, "not a member"),
    ]
    for path, status, says in refusals:
        code, body = await alice.json("POST", path)
        assert code == status and says in body["message"] and len(body["message"]) < 400, (path, body)
    code, body = await alice.json(
        "POST", "alpha/minimal/-/restart", body=b'{"resource_class": 5}', headers={"Content-Type": "application/json"}
    )
    assert code == 400 and body == {"status": 400, "message": "resource_class must be a string."}
    code, body = await alice.json("GET", "alpha/minimal/-/restart")
    assert code == 405
    # nothing stopped, nothing started again
    after = await alice.wait_ready("alpha/minimal")
    assert after["started"] == before["started"]
    assert hub_server(hub, "alice", "alpha-minimal")["started"] == before["started"]


async def test_a_restart_of_a_starting_server_waits_and_of_a_stopped_one_starts_it(client, hub):
    alice = client("alice")
    set_spawn_delay(hub, 30)
    code, model = await alice.json("POST", "alpha/minimal")
    assert code == 202 and model["pending"] == "spawn"
    code, body = await alice.json("POST", "alpha/minimal/-/restart")
    assert code == 409 and body["message"] == "This server is still starting: restart it once it runs."
    assert hub_server(hub, "alice", "alpha-minimal")["pending"] == "spawn"  # untouched
    code, _ = await alice.json("DELETE", "alpha/minimal")
    wait_for(lambda: hub_server(hub, "alice", "alpha-minimal") is None, timeout=30, message="the stop")
    set_spawn_delay(hub, None)
    # asked again after its stop (a retry after a lost answer): it starts
    code, model = await alice.json("POST", "alpha/minimal/-/restart")
    assert code == 202, model
    await alice.wait_ready("alpha/minimal")


# -- keeping it from the culler ---------------------------------------------------------------------


async def test_keep_running_moves_the_hubs_last_activity_and_the_idle_deadline(client, hub):
    alice = client("alice")
    set_idle_minutes(hub, 55)  # a server nobody has used for 55 minutes: the demo's culler waits 60
    try:
        await alice.json("POST", "alpha/minimal")
        model = await alice.wait_ready("alpha/minimal")
    finally:
        set_idle_minutes(hub, None)
    idle_since = parse(model["last_activity"])
    assert parse(model["culls_at"]) - idle_since == datetime.timedelta(hours=1)
    assert parse(model["culls_at"]) - datetime.datetime.now(datetime.timezone.utc) < datetime.timedelta(minutes=6)

    code, body = await alice.json("POST", "alpha/minimal/-/activity")
    assert code == 204 and body is None
    hub_activity = parse(hub_server(hub, "alice", "alpha-minimal")["last_activity"] + "")
    assert hub_activity - idle_since > datetime.timedelta(minutes=54)  # the Hub's own record, which the culler reads
    code, model = await alice.json("GET", "alpha/minimal/-/details")
    assert code == 200 and parse(model["last_activity"]) == hub_activity
    assert parse(model["culls_at"]) == hub_activity + datetime.timedelta(hours=1)

    # twice: the deadline moves on again, never back
    code, _ = await alice.json("POST", "alpha/minimal/-/activity")
    assert code == 204
    code, again = await alice.json("GET", "alpha/minimal/-/details")
    assert parse(again["culls_at"]) >= parse(model["culls_at"])

    # only running servers, only one's own
    code, body = await alice.json("POST", "alpha/python/-/activity")
    assert code == 404 and body["message"] == "You have no server for alpha/python."
    code, body = await client("bob").json("POST", "beta/minimal/-/activity")
    assert code == 403


async def test_keep_running_in_a_loop_costs_the_hub_one_report(client, hub):
    alice = client("alice")
    await alice.json("POST", "alpha/minimal")
    await alice.wait_ready("alpha/minimal")
    before = hub.meter.count(r"/users/alice/activity$")
    answers = [(await alice.json("POST", "alpha/minimal/-/activity"))[0] for _ in range(50)]
    assert answers == [204] * 50
    assert hub.meter.count(r"/users/alice/activity$") - before == 1  # Launcher.keep_running_interval


async def test_servers_carry_no_idle_deadline_while_starting(client, hub):
    alice = client("alice")
    set_spawn_delay(hub, 30)
    code, model = await alice.json("POST", "alpha/minimal")
    assert code == 202 and model["culls_at"] is None
    code, listing = await alice.json("GET", "")
    assert [s["culls_at"] for s in listing] == [None]
    assert listing[0]["details_url"] == "/services/notebooks/alpha/minimal/-/details"


# -- the pages a browser gets -----------------------------------------------------------------------


def start_by_form(browser, hub, resource_class: str, **kwargs):
    """The list page's start form, as alice sends it for alpha/python in ``resource_class``."""
    page = browser.get(hub.service_url)
    fields = {"workspace": "alpha", "image": "python", "resource_class": resource_class}
    return browser.post(hub.service_url, data={"_xsrf": hidden_field(page.text, "_xsrf"), **fields}, **kwargs)


def test_a_running_servers_page_and_its_log_are_pages_for_people(hub):
    browser = log_in(hub, "alice")
    started = start_by_form(browser, hub, "large", allow_redirects=False)
    assert started.status_code == 303
    wait_for(lambda: (hub_server(hub, "alice", "alpha-python") or {}).get("ready"), timeout=30, message="ready")
    details = hub.service_url + "alpha/python/-/details"
    page = wait_for(lambda: (r := browser.get(details)).status_code == 200 and "running" in r.text and r, timeout=10)
    assert "Large" in page.text and 'id="culls-at"' in page.text and 'id="restart"' in page.text
    assert 'href="/user/alice/alpha-python/"' in page.text  # Open
    # the status URL still leads into the running server; the list links to the page
    assert browser.get(hub.service_url + "alpha/python", allow_redirects=False).headers["Location"] == (
        "/user/alice/alpha-python/"
    )
    assert 'href="/services/notebooks/alpha/python/-/details"' in browser.get(hub.service_url).text

    # Start pressed again with another class: not a 409 page, an offer to restart
    offer = start_by_form(browser, hub, "small")
    assert offer.status_code == 200 and offer.url == details + "?resource_class=small"
    assert "This server runs as <strong>Large</strong>" in offer.text and "Restart as Small" in offer.text
    assert hub_server(hub, "alice", "alpha-python")["user_options"]["resource_class"] == "large"  # nothing yet
    # only a class on offer is offered; anything else in the link is ignored
    for odd in ("<script>", "gpu" * 2000, "large"):
        page = browser.get(details, params={"resource_class": odd})
        assert page.status_code == 200 and 'id="restart-offer"' not in page.text and "<script>" not in page.text[-20:]
    # Keep running from the list goes back to the list
    kept = browser.post(
        hub.service_url + "alpha/python/-/activity",
        data={"_xsrf": hidden_field(page.text, "_xsrf"), "from": "list"},
        allow_redirects=False,
    )
    assert kept.status_code == 303 and kept.headers["Location"] == "/services/notebooks/?kept=alpha-python"
    # the list's start form now preselects what the server runs with
    assert '"alpha/python": "large"' in html.unescape(browser.get(hub.service_url).text)

    # its log: a page to read, never a file to download
    log = browser.get(hub.service_url + "alpha/python/-/logs", headers=AS_A_BROWSER)
    assert log.status_code == 200 and log.headers["Content-Type"].startswith("text/html")
    assert "Content-Disposition" not in log.headers
    assert "in-process test server starting" in log.text and 'id="log"' in log.text
    # clients still get data
    lines = browser.get(hub.service_url + "alpha/python/-/logs", headers={"Accept": "application/json"})
    assert lines.headers["Content-Type"] == "application/x-ndjson"
    assert json.loads(lines.text.splitlines()[0])["line"]
    refused = browser.get(hub.service_url + "alpha/python/-/logs?tail=x", headers=AS_A_BROWSER)
    assert refused.status_code == 400 and refused.headers["Content-Type"].startswith("text/html")  # a page, for people
    assert "tail must be a number" in refused.text

    # the restart, by form (with its XSRF token): back to the server's page, which follows the new start
    restarted = browser.post(
        hub.service_url + "alpha/python/-/restart",
        data={"_xsrf": hidden_field(offer.text, "_xsrf"), "resource_class": "small"},
        allow_redirects=False,
    )
    assert restarted.status_code == 303 and restarted.headers["Location"] == "/services/notebooks/alpha/python"
    assert hub_server(hub, "alice", "alpha-python")["user_options"]["resource_class"] == "small"
    # without the token, refused, and nothing changes
    refused = browser.post(hub.service_url + "alpha/python/-/restart", data={"resource_class": "large"})
    assert refused.status_code == 403
    assert hub_server(hub, "alice", "alpha-python")["user_options"]["resource_class"] == "small"


def test_a_stopped_servers_page_offers_the_class_it_last_ran_with(hub, tokens):
    # stopped as the culler stops it (not removed): the Hub keeps its options
    code, _ = admin_request(hub, "POST", "/users/alice/servers/alpha-python", start_body(hub, PYTHON_LARGE))
    assert code in (201, 202)
    wait_for(lambda: (hub_server(hub, "alice", "alpha-python") or {}).get("ready"), timeout=30, message="ready")
    code, _ = admin_request(hub, "DELETE", "/users/alice/servers/alpha-python", {"remove": False})
    assert code in (202, 204)
    wait_for(lambda: hub_server(hub, "alice", "alpha-python") is None, timeout=30, message="stopped")
    browser = log_in(hub, "alice")
    # (the service's 1 s cache may still hold alice's model from before the start: poll)
    page = wait_for(lambda: (r := browser.get(hub.service_url + "alpha/python")) and ">Remove<" in r.text and r)
    assert '<option value="large" selected' in page.text  # not the image's default, small
    assert '<option value="small" selected' not in page.text


def test_a_stopped_servers_details_lead_to_its_status_page(hub):
    browser = log_in(hub, "bob")
    response = browser.get(hub.service_url + "alpha/minimal/-/details", allow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"] == "/services/notebooks/alpha/minimal"
    code = browser.get(hub.service_url + "alpha/minimal/-/details", headers={"Accept": "application/json"})
    assert code.status_code == 404 and code.json()["message"] == "You have no server for alpha/minimal."
