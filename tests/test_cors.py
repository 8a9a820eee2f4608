"""CORS for a platform's web presence on another origin: JSON checks, then a real page in Chromium."""

import json
import os
from urllib.parse import urlencode

import pytest

from conftest import wait_for

pytestmark = pytest.mark.usefixtures("clean_servers")

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test-artifacts")


async def test_a_preflight_from_an_allowed_origin_is_answered_without_login(client, hub):
    origin = hub.web_presence.origin
    response = await client(None).request(
        "OPTIONS",
        "alpha/python",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.code == 204
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in response.headers  # never cookies across origins


async def test_other_origins_get_nothing(client, hub):
    other = hub.web_presence.other_origin
    preflight = await client(None).request(
        "OPTIONS", "", headers={"Origin": other, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.code == 403 and "Access-Control-Allow-Origin" not in preflight.headers
    response = await client("alice").request("GET", "", headers={"Origin": other})
    assert response.code == 200 and "Access-Control-Allow-Origin" not in response.headers
    assert response.headers["Vary"] == "Origin"


async def test_answers_and_errors_carry_the_header_for_an_allowed_origin(client, hub):
    origin = hub.web_presence.origin
    alice = client("alice")
    ok = await alice.request("GET", "", headers={"Origin": origin})
    refused = await alice.request("GET", "gamma/python", headers={"Origin": origin})  # not a member
    for response in (ok, refused):
        assert response.headers["Access-Control-Allow-Origin"] == origin
    assert refused.code == 403 and json.loads(refused.body)["status"] == 403


def test_the_web_presence_drives_the_service_from_another_origin(browser, hub, tokens):
    query = urlencode({"service": hub.service_url, "token": tokens["alice"]})
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{hub.web_presence.origin}/?{query}")
        wait_for(lambda: page.text_content("#result") != "running", timeout=60, message="the page's calls")
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, "cors-web-presence.png"))
        result = json.loads(page.text_content("#result"))
        assert "failure" not in result, result
        assert result["list"] == [200, []]
        assert result["start"][0] in (201, 202) and result["start"][1]["name"] == "alpha-python"
        assert result["events"][-1]["ready"] is True
        assert result["stop"] == 204
        status, body, retry_after = result["error"]  # errors are readable too
        assert status == 403 and body["status"] == 403 and retry_after is None

        # the same page from an origin the service does not allow: the browser refuses the answer
        page.goto(f"{hub.web_presence.other_origin}/?{query}")
        wait_for(lambda: page.text_content("#result") != "running", timeout=30, message="the page's calls")
        assert json.loads(page.text_content("#result")) == {"failure": "TypeError: Failed to fetch"}
    finally:
        context.close()
