"""Steps of the browser tests (Playwright): log in, take the screenshots people look at, another site."""

import os

import requests
from tornado import web

from conftest import wait_for
from threaded_server import ThreadedServer

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test-artifacts")


def start_as(hub, token: str, path: str) -> None:
    """Start a server through the service's JSON API with a user's token, and wait until it is ready."""
    started = requests.post(
        hub.service_url + path, headers={"Authorization": f"token {token}", "Accept": "application/json"}
    )
    assert started.status_code in (201, 202), started.text
    wait_for(
        lambda: (
            requests.get(
                hub.service_url + path, headers={"Authorization": f"token {token}", "Accept": "application/json"}
            )
            .json()
            .get("ready")
        ),
        timeout=30,
        message=f"{path} ready",
    )


def log_in(page, hub, user: str) -> None:
    page.goto(hub.service_url)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", "any password")
    page.click("#login_submit")
    page.wait_for_url(hub.service_url)


DESKTOP = {"width": 1100, "height": 700}
PHONE = {"width": 390, "height": 844}  # a phone held upright


def screenshot(page, name: str) -> None:
    """The page at desktop width (name.png) and at phone width (name-phone.png), for people to look at."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, name), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=os.path.join(ARTIFACTS, name.replace(".png", "-phone.png")), full_page=True)
    # nothing wider than the screen: the page itself never scrolls sideways (a table may, inside)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
    # and the list of servers is lines to read, not a table to scroll
    assert page.evaluate(
        "Array.from(document.querySelectorAll('#servers')).every(t => t.scrollWidth <= t.parentElement.clientWidth)"
    ), name
    page.set_viewport_size(DESKTOP)


def other_site(link: str, framed: str) -> ThreadedServer:
    """A page on another site (localhost, where the Hub is 127.0.0.1): /link to ``link``, /frame framing ``framed``."""

    class Page(web.RequestHandler):
        def get(self, kind):
            if kind == "link":
                self.finish(f'<a id="go" href="{link}">my notebook</a>')
            else:
                self.finish(f'<iframe id="framed" src="{framed}" width="600" height="400"></iframe>')

    server = ThreadedServer(lambda: web.Application([(r"/(link|frame)", Page)]))
    server.origin = f"http://localhost:{server.port}"
    return server
