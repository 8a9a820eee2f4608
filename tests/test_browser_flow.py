"""A browser's way in: Hub login, OAuth redirect back, cookie, XSRF-protected forms.

``requests.Session`` keeps cookies per path like a browser does (the Hub's
``_xsrf`` at /hub/ and ours at /services/notebooks/ have the same name).
"""

import pytest
import requests

from conftest import hidden_field, log_in, wait_for

pytestmark = [pytest.mark.hub_version, pytest.mark.usefixtures("clean_servers")]


def test_login_lands_on_the_server_list(hub):
    browser = log_in(hub, "alice")
    page = browser.get(hub.service_url)
    assert "Your notebook servers" in page.text
    assert 'option value="alpha"' in page.text and 'option value="beta"' in page.text
    # the service's cookie identifies alice on the JSON API too
    assert browser.get(hub.service_url + "user", headers={"Accept": "application/json"}).json()["name"] == "alice"


def test_anonymous_browser_is_sent_to_the_hub(hub):
    response = requests.get(hub.service_url + "alpha/python", allow_redirects=False)
    assert response.status_code == 302
    assert "/hub/api/oauth2/authorize" in response.headers["Location"]


@pytest.mark.usefixtures("real_servers")  # JupyterLab, behind its own login through the Hub
def test_form_post_starts_then_status_page_redirects_into_the_server(hub):
    browser = log_in(hub, "alice")
    status_url = hub.service_url + "alpha/python"
    page = browser.get(status_url)
    assert page.status_code == 200 and "not running" in page.text
    started = browser.post(status_url, data={"_xsrf": hidden_field(page.text, "_xsrf")}, allow_redirects=False)
    assert started.status_code == 303
    assert started.headers["Location"] == "/services/notebooks/alpha/python"

    def redirected_into_server():
        r = browser.get(status_url, allow_redirects=False)
        return r.status_code == 302 and r.headers["Location"]

    location = wait_for(redirected_into_server, timeout=60, interval=0.3, message="the status page to redirect")
    assert location == "/user/alice/alpha-python/"
    # and the browser gets into JupyterLab through the proxy
    lab = browser.get(hub.url + location)
    assert lab.status_code == 200 and "/user/alice/alpha-python/lab" in lab.url


def test_start_form_on_the_list_page(hub):
    browser = log_in(hub, "bob")
    page = browser.get(hub.service_url)
    response = browser.post(
        hub.service_url,
        data={"_xsrf": hidden_field(page.text, "_xsrf"), "workspace": "alpha", "image": "minimal"},
        allow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["Location"].endswith("/alpha/minimal")
    servers = browser.get(hub.service_url, headers={"Accept": "application/json"}).json()
    assert [s["name"] for s in servers] == ["alpha-minimal"]


def test_post_and_delete_without_xsrf_are_refused_and_change_nothing(hub):
    browser = log_in(hub, "alice")
    for method in ("POST", "DELETE"):
        response = browser.request(method, hub.service_url + "alpha/python", headers={"Accept": "application/json"})
        assert response.status_code == 403, method
        assert "XSRF" in response.json()["message"]
        wrong = browser.request(
            method, hub.service_url + "alpha/python", headers={"Accept": "application/json", "X-XSRFToken": "forged"}
        )
        assert wrong.status_code == 403
    assert browser.get(hub.service_url, headers={"Accept": "application/json"}).json() == []


def test_xsrf_header_allows_post_and_delete(hub):
    browser = log_in(hub, "alice")
    xsrf = hidden_field(browser.get(hub.service_url).text, "_xsrf")
    headers = {"Accept": "application/json", "X-XSRFToken": xsrf}
    started = browser.post(hub.service_url + "alpha/minimal", headers=headers)
    assert started.status_code in (201, 202)
    stopped = browser.delete(hub.service_url + "alpha/minimal", headers=headers)
    assert stopped.status_code in (202, 204)


def test_stop_form_stops_the_server(hub):
    browser = log_in(hub, "alice")
    xsrf = hidden_field(browser.get(hub.service_url).text, "_xsrf")
    browser.post(hub.service_url + "alpha/minimal", data={"_xsrf": xsrf}, allow_redirects=False)
    response = browser.post(
        hub.service_url + "alpha/minimal", data={"_xsrf": xsrf, "action": "stop"}, allow_redirects=False
    )
    assert response.status_code == 303 and response.headers["Location"] == "/services/notebooks/"

    def listed():
        return [
            (s["name"], s["stopped"])
            for s in browser.get(hub.service_url, headers={"Accept": "application/json"}).json()
        ]

    wait_for(lambda: listed() == [("alpha-minimal", True)], timeout=30, message="the server to stop, and stay")
    # the list's Remove removes it
    response = browser.post(
        hub.service_url + "alpha/minimal", data={"_xsrf": xsrf, "action": "remove"}, allow_redirects=False
    )
    assert response.status_code == 303 and listed() == []


def test_errors_are_html_pages_for_browsers(hub):
    browser = log_in(hub, "bob")
    page = browser.get(hub.service_url + "beta/python")
    assert page.status_code == 403
    assert page.headers["Content-Type"].startswith("text/html")
    assert "not a member of workspace" in page.text and "Traceback" not in page.text
    page = browser.get(hub.service_url + "alpha/cobol")
    assert page.status_code == 404 and "Unknown image" in page.text
