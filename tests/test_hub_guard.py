"""End to end: the Hub itself refuses what the service would refuse, even from a user's own token."""

import pytest

from conftest import admin_request, log_in, start_around_the_service, wait_for

pytestmark = [pytest.mark.hub_version, pytest.mark.usefixtures("clean_servers")]


def has_no_servers(hub, user: str) -> bool:
    status, model = admin_request(hub, "GET", f"/users/{user}")
    return status == 200 and model["servers"] == {}


async def test_users_own_token_cannot_start_a_foreign_workspace(hub, tokens):
    message = await start_around_the_service(
        hub, tokens["bob"], "bob", "beta-python", {"workspace": "beta", "image": "python"}
    )
    assert "not a member of workspace 'beta'" in message
    wait_for(lambda: has_no_servers(hub, "bob"), message="no server for bob")


async def test_hub_refuses_an_image_outside_the_catalogue(hub, tokens):
    message = await start_around_the_service(
        hub, tokens["alice"], "alice", "alpha-cobol", {"workspace": "alpha", "image": "cobol"}
    )
    assert "Unknown image 'cobol'" in message
    wait_for(lambda: has_no_servers(hub, "alice"), message="no server for alice")


async def test_hub_refuses_a_name_that_is_not_the_pairs(hub, tokens):
    message = await start_around_the_service(
        hub, tokens["alice"], "alice", "mine", {"workspace": "alpha", "image": "python"}
    )
    assert "must be named 'alpha-python'" in message


async def test_hub_refuses_user_options_the_service_never_sends(hub, tokens):
    options = {"workspace": "alpha", "image": "python", "profile": "free", "image--unlisted-choice": "evil/miner"}
    message = await start_around_the_service(hub, tokens["alice"], "alice", "alpha-python", options)
    assert "may not contain 'image--unlisted-choice'" in message
    wait_for(lambda: has_no_servers(hub, "alice"), message="no server for alice")


async def test_hub_refuses_servers_without_a_workspace(hub, tokens):
    message = await start_around_the_service(hub, tokens["alice"], "alice", "", None)
    assert "workspace servers only" in message
    wait_for(lambda: has_no_servers(hub, "alice"), message="no server for alice")


async def test_the_service_path_still_works_with_the_guard(client):
    code, model = await client("bob").json("POST", "alpha/minimal")
    assert code in (201, 202)
    assert (await client("bob").wait_ready("alpha/minimal"))["ready"]


def test_the_hubs_front_door_leads_to_the_service_and_its_start_says_why_not(hub):
    browser = log_in(hub, "alice")
    # a logged-in user who opens the Hub lands on the service's list (c.JupyterHub.default_url)
    front = browser.get(hub.url + "/hub/", allow_redirects=False)
    assert front.status_code == 302 and front.headers["Location"] == "/services/notebooks/"
    # the Hub's own "Start My Server" (its default server) is refused, and the Hub's page says why
    started = browser.get(hub.url + "/hub/spawn/alice", allow_redirects=False)
    assert started.status_code == 302 and started.headers["Location"] == "/hub/spawn-pending/alice"

    def failed_page() -> str | None:
        page = browser.get(hub.url + "/hub/spawn-pending/alice", allow_redirects=False)
        return page.text if page.status_code == 403 else None  # (a Response of a 403 is falsy)

    text = wait_for(failed_page, timeout=30, message="the Hub's page of the failed start")
    assert (
        "<p>This Hub starts workspace servers only: start one from the notebooks service. "
        '<a href="/services/notebooks/">Open the notebooks service</a></p>'
    ) in text
