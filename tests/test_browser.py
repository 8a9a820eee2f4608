"""In a real browser (Playwright driving Debian's Chromium) against the real demo stack.

Log in through the Hub, start from the service, watch the progress bar move,
land in JupyterLab, stop; and see why a failed start failed. Screenshots go
to test-artifacts/.
"""

import os
import re

import pytest
import requests

from notebooks_service.demo.app import SERVICE_CONFIG as DEMO_SERVICE_CONFIG
from notebooks_service.logs import local_log_path

from conftest import (
    admin_request,
    forget_output,
    running_hub,
    set_idle_minutes,
    set_members,
    set_spawn_delay,
    set_spawn_failure,
    stop_all_servers,
    wait_for,
)
from in_browser import ARTIFACTS, DESKTOP, log_in, other_site, screenshot, start_as

pytestmark = pytest.mark.usefixtures("clean_servers")


def progress_seen(page) -> list[int]:
    return [int(m.split()[1]) for m in page.console_messages if m.startswith("progress ")]


@pytest.mark.usefixtures("real_servers")
def test_start_watch_the_bar_land_in_jupyterlab_and_stop(page, hub):
    set_spawn_delay(hub, 2)
    log_in(page, hub, "alice")
    page.select_option("#workspace", "alpha")
    page.select_option("#image", "python")
    page.click("#start-form button")
    page.wait_for_url(hub.service_url + "alpha/python")
    assert page.inner_text("#state") == "starting"
    page.wait_for_selector("#progress-log li")  # the stream is flowing
    screenshot(page, "status-page.png")

    page.wait_for_url(re.compile(r".*/user/alice/alpha-python/lab.*"), timeout=60_000)
    page.wait_for_selector(".jp-LabShell", timeout=60_000)  # JupyterLab itself, through the proxy
    # the workspace's data in its file browser: the folder its members share, and its bucket
    listing = page.locator(".jp-DirListing-content")
    for name in ("workspace", "s3"):
        listing.get_by_text(name, exact=True).wait_for(timeout=30_000)
    page.screenshot(path=os.path.join(ARTIFACTS, "jupyterlab-workspace-data.png"))
    seen = progress_seen(page)
    assert len(set(seen)) >= 3 and seen == sorted(seen) and seen[-1] == 100, seen

    page.goto(hub.service_url)
    row = page.locator("tr[data-server=alpha-python]")
    assert "running" in row.inner_text()
    stop = row.locator("button", has_text="Stop")
    stop.click()  # the first click asks
    assert stop.inner_text() == "Stop alpha/python?" and page.url == hub.service_url
    stop.click()  # the second stops
    page.wait_for_url(hub.service_url)

    def stopped():
        page.reload()
        return "stopped" in page.locator("tr[data-server=alpha-python] .state").inner_text()

    # Stop keeps it: listed, stopped, to start again or remove (which asks first, and says what goes)
    wait_for(stopped, timeout=30, interval=0.5, message="the server to be listed as stopped")
    row = page.locator("tr[data-server=alpha-python]")
    assert row.locator("button").all_inner_texts() == ["Start", "Copy link", "Remove"]
    screenshot(page, "server-list-stopped-by-stop.png")
    remove = row.locator("button", has_text="Remove")
    remove.click()
    assert remove.inner_text() == "Remove alpha/python and its shares?"
    remove.click()
    page.wait_for_url(hub.service_url)
    wait_for(lambda: page.reload() or page.locator("#no-servers").count() == 1, timeout=30, message="no server")


def test_a_failed_start_says_why(page, hub):
    forget_output(hub, "alice", "alpha-minimal")  # a server that never ran: no output
    set_spawn_failure(hub, "image quay.io/nope:latest could not be pulled")
    log_in(page, hub, "alice")
    page.goto(hub.service_url + "alpha/minimal")
    assert page.inner_text("#state") == "not running"
    page.click("#start")
    failure = page.locator("#progress-failure, #failure").first
    failure.wait_for(state="visible", timeout=30_000)
    assert "could not be pulled" in failure.inner_text()
    assert page.inner_text("#state") == "failed"
    assert page.locator("#start").is_visible() and page.inner_text("#start") == "Try again"
    # the server log opens by itself: here the server never ran, and the panel says so
    log = page.locator("#server-log")
    log.wait_for(state="visible", timeout=10_000)
    wait_for(lambda: log.inner_text() != "…", timeout=10, message="the log panel to load")
    assert log.inner_text() == "(This server has written no output yet.)"
    screenshot(page, "status-failed.png")
    # the failed start stays in the Hub (and takes a slot) until removed: the page offers it, asking first
    page.reload()
    remove = page.locator("#stop")
    assert remove.inner_text() == "Remove"
    remove.click()
    assert (
        remove.inner_text() == "Remove alpha/minimal and its shares?" and page.url == hub.service_url + "alpha/minimal"
    )
    remove.click()
    page.wait_for_url(hub.service_url)
    assert page.locator("tr[data-server=alpha-minimal]").count() == 0


def test_a_server_stopped_from_the_hub_while_the_page_watches(page, hub, tokens):
    set_spawn_delay(hub, 30)
    log_in(page, hub, "alice")
    page.goto(hub.service_url + "alpha/minimal")
    page.click("#start")
    page.wait_for_selector("#progress-log li")  # watching the start
    assert page.inner_text("#state") == "starting"
    # alice stops it on the Hub's own home page, which calls the Hub's API so
    stopped = requests.delete(
        f"{hub.url}/hub/api/users/alice/servers/alpha-minimal", headers={"Authorization": f"token {tokens['alice']}"}
    )
    assert stopped.status_code in (202, 204)
    note = page.locator("#progress-failure")
    note.wait_for(state="visible", timeout=30_000)
    # the page says so, and stays (JupyterHub's own stream says "ready" here: it is not followed)
    assert note.inner_text() == "The server was stopped before it was ready."
    assert page.inner_text("#state") == "stopped" and page.inner_text("#start") == "Start again"
    assert page.url == hub.service_url + "alpha/minimal"
    screenshot(page, "status-stopped-elsewhere.png")
    set_spawn_delay(hub, None)


def test_a_bookmark_of_a_stopped_server_starts_it_in_one_click_and_opens_the_notebook(page, hub):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    log_in(page, hub, "alice")
    bookmark = hub.service_url + "alpha/minimal/reports/summary.ipynb"
    page.goto(bookmark)
    assert page.inner_text("#state") == "not running"
    page.click("#copy-link")  # the link to keep: this very page
    page.wait_for_function("document.getElementById('copy-link').dataset.copied")
    assert page.eval_on_selector("#copy-link", "b => b.dataset.copied") == bookmark
    assert page.evaluate("navigator.clipboard.readText()") == bookmark
    page.click("#start")
    page.wait_for_url(re.compile(r".*/user/alice/alpha-minimal/lab/tree/reports/summary\.ipynb"), timeout=60_000)


def test_with_start_on_visit_the_bookmark_alone_brings_them_back(browser, tmp_path):
    service_config = tmp_path / "notebooks_service_config.py"
    service_config.write_text(
        f"load_subconfig({DEMO_SERVICE_CONFIG!r})\nc = get_config()\nc.NotebooksService.start_on_visit = True\n"
    )
    with running_hub(tmp_path / "hub", service_config=str(service_config)) as visited:
        context = browser.new_context()
        page = context.new_page()
        log_in(page, visited, "alice")
        bookmark = visited.service_url + "alpha/minimal/notes.ipynb"
        elsewhere = other_site(bookmark, visited.service_url + "no-such-page")
        try:
            # a page on another site that sends her to the bookmark: the page offers the start, starts nothing
            posts = []
            page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
            page.goto(elsewhere.origin + "/link")
            page.click("#go")
            page.wait_for_url(bookmark)
            page.wait_for_selector("#start")
            page.wait_for_load_state("load")
            # neither sent nor about to be: no start request, no start-by-itself script on the page
            assert posts == [] and page.locator("script", has_text="start_on_visit").count() == 0
            assert admin_request(visited, "GET", "/users/alice")[1]["servers"] == {}
            # and no page on another site can frame the service's pages (here its 404, which needs no login):
            # Chromium fails the framed request with ERR_BLOCKED_BY_RESPONSE (its frame then shows its own
            # error page, though Playwright does not always see that frame navigate)
            answers = []  # what the framed request got
            page.on("response", lambda r: answers.append((r.url, r.status)) if "no-such-page" in r.url else None)
            page.on("requestfailed", lambda r: answers.append((r.url, r.failure)) if "no-such-page" in r.url else None)
            page.goto(elsewhere.origin + "/frame")
            framed = lambda: [f.url for f in page.frames[1:]]  # noqa: E731
            wait_for(
                lambda: (
                    ("net::ERR_BLOCKED_BY_RESPONSE" in [answer for _, answer in answers])
                    or (framed() and framed()[0].startswith("chrome-error:"))
                ),
                timeout=10,
                message=lambda: f"framing refused (frames: {framed()}; the framed request: {answers})",
            )
            assert not [url for url in framed() if "no-such-page" in url]  # the service's page is not in it
        finally:
            elsewhere.close()
        assert admin_request(visited, "GET", "/users/alice")[1]["servers"] == {}
        # the bookmark itself (Sec-Fetch-Site: none) starts the server and opens the notebook
        page.goto(bookmark)
        page.wait_for_url(re.compile(r".*/user/alice/alpha-minimal/lab/tree/notes\.ipynb"), timeout=60_000)
        context.close()
        stop_all_servers(visited, "alice")


def test_the_list_shows_names_and_times_and_keeps_up_without_a_reload(page, hub, tokens):
    log_in(page, hub, "alice")
    assert "Choose a workspace and an image below" in page.inner_text("#no-servers")
    screenshot(page, "server-list-empty.png")
    started = requests.post(
        hub.service_url + "alpha/minimal",
        headers={"Authorization": f"token {tokens['alice']}", "Accept": "application/json"},
    )
    assert started.status_code in (201, 202)
    page.reload()
    row = page.locator("tr[data-server=alpha-minimal]")
    # as people read them: the image's and the size's display names, not the catalogue's keys
    assert [row.locator(f"td.{c}").inner_text() for c in ("image", "resource-class")] == [
        "Minimal (single document)",
        "Small",
    ]
    wait_for(lambda: "ago" in row.locator("time.started").inner_text() or "just now" in row.inner_text(), timeout=10)
    wait_for(lambda: "running" in row.locator(".state").inner_text(), timeout=60, interval=0.5, message="running")
    screenshot(page, "server-list.png")
    # stopped elsewhere: the list follows by itself (drawn anew: a stopped row's actions are others)
    stopped = requests.delete(
        f"{hub.url}/hub/api/users/alice/servers/alpha-minimal", headers={"Authorization": f"token {tokens['alice']}"}
    )
    assert stopped.status_code in (202, 204)
    wait_for(
        lambda: page.locator("tr[data-server=alpha-minimal] .state").inner_text() == "stopped",
        timeout=30,
        interval=0.5,
        message="the row to say stopped",
    )
    wait_for(lambda: row.locator("button").all_inner_texts() == ["Start", "Copy link", "Remove"], timeout=15)
    assert row.locator(".last-activity").inner_text().startswith("stopped ")  # when it stopped
    assert row.locator("button[data-confirm]").inner_text() == "Remove"
    screenshot(page, "server-list-stopped.png")
    # a page that does not exist keeps the navbar: who is logged in, and Log out
    page.goto(hub.service_url + "alpha/minimal/-/nothing-here")
    assert "No such page" in page.inner_text("main") and "Log out" in page.inner_text("nav")
    assert "alice" in page.inner_text("nav")
    screenshot(page, "not-found.png")


def test_the_start_form_offers_the_classes_of_the_image_and_starts_the_one_chosen(page, hub):
    set_spawn_delay(hub, 30)  # stays on the status page while we look
    log_in(page, hub, "alice")
    page.select_option("#workspace", "alpha")
    page.select_option("#image", "minimal")
    enabled = page.eval_on_selector_all("#resource_class option:not([disabled])", "os => os.map(o => o.value)")
    assert enabled == ["small"]
    page.select_option("#image", "python")
    assert page.input_value("#resource_class") == "small"  # the image's default
    page.select_option("#resource_class", "large")
    page.click("#start-form button")
    page.wait_for_url(hub.service_url + "alpha/python")
    assert page.inner_text("#server-class") == "Large"  # as people read it


def test_a_failed_start_page_says_what_kubernetes_said(page, hub, cluster):
    forget_output(hub, "alice", "alpha-minimal")
    cluster.add_event(
        "ws-alpha",
        "jupyter-alice--alpha-minimal",
        "FailedScheduling",
        "0/3 nodes are available: 3 Insufficient memory.",
    )
    set_spawn_failure(hub, "the pod could not be scheduled")
    log_in(page, hub, "alice")
    page.goto(hub.service_url + "alpha/minimal")
    page.click("#start")
    page.locator("#progress-failure, #failure").first.wait_for(state="visible", timeout=30_000)
    page.reload()  # the page as it stays after a failed start: the Hub's reason and the pod's events
    assert "the pod could not be scheduled" in page.inner_text("#failure")
    assert "Insufficient memory" in page.inner_text("#past-events")
    screenshot(page, "status-failed-events.png")


# -- day two: a running server's page, the culler's deadline, restart, its log ---------------------


def start_idle(hub, token: str, path: str) -> None:
    """Start a server as one unused for 55 minutes: the demo's culler stops servers idle for 60."""
    set_idle_minutes(hub, 55)
    try:
        start_as(hub, token, path)
    finally:
        set_idle_minutes(hub, None)


def test_a_server_near_its_idle_stop_warns_and_keep_running_moves_the_stop(page, hub, tokens):
    start_idle(hub, tokens["alice"], "alpha/minimal")
    log_in(page, hub, "alice")
    row = page.locator("tr[data-server=alpha-minimal]")
    assert re.fullmatch(r"stops at \d\d:\d\d( [AP]M)? if idle", row.locator(".idle-stop").inner_text())
    assert row.locator(".keep-running button").is_visible()  # the stop is near: the row offers to keep it
    screenshot(page, "server-list-idle-warning.png")
    row.locator("a.details-link").click()
    page.wait_for_url(hub.service_url + "alpha/minimal/-/details")
    warning = page.locator("#idle-warning")
    assert warning.is_visible() and "unless it is used" in warning.inner_text()
    stops_at = page.get_attribute("#culls-at", "datetime")
    assert page.inner_text("#state") == "running" and page.inner_text("#server-class").startswith("Small")
    screenshot(page, "details-idle-warning.png")

    page.click("#keep-running-now")
    page.wait_for_url(hub.service_url + "alpha/minimal/-/details?kept=1")
    assert not page.locator("#idle-warning").is_visible()  # an hour from now again
    moved = page.get_attribute("#culls-at", "datetime")
    assert moved > stops_at and page.inner_text("#last-activity") == "just now"
    # and the page says it worked, with the new time
    assert page.inner_text("#kept").startswith("Kept running: if it stays idle, the Hub now stops it at ")
    assert page.get_attribute("#kept time", "datetime") == moved
    assert re.fullmatch(r"stops at \d\d:\d\d( [AP]M)?", page.inner_text("#idle-stop"))
    # where the workspace's data is, with the way into the file browser
    files = page.locator("#storage li[data-kind=files]")
    assert files.locator("a").inner_text() == "workspace/"
    assert files.locator("a").get_attribute("href") == "/user/alice/alpha-minimal/lab/tree/workspace"
    assert "every member's server of this workspace" in files.inner_text()
    assert "s3://workspace-alpha/" in page.inner_text("#storage li[data-kind=s3]")
    screenshot(page, "details.png")
    # and the list no longer warns either
    page.goto(hub.service_url)
    assert not page.locator("tr[data-server=alpha-minimal] .keep-running button").is_visible()


def test_keep_running_on_the_list_says_it_worked_and_until_when(page, hub, tokens):
    start_idle(hub, tokens["alice"], "alpha/python")
    log_in(page, hub, "alice")
    row = page.locator("tr[data-server=alpha-python]")
    before = row.locator(".idle-stop time").get_attribute("datetime")
    row.locator(".keep-running button").click()
    page.wait_for_url(hub.service_url + "?kept=alpha-python")
    kept = page.locator("#kept")
    assert kept.inner_text().startswith("alpha/python keeps running: if it stays idle, the Hub now stops it at ")
    now_stops = row.locator(".idle-stop time").get_attribute("datetime")
    assert now_stops > before and kept.locator("time").get_attribute("datetime") == now_stops
    assert not row.locator(".keep-running button").is_visible()
    screenshot(page, "server-list-kept-running.png")


def test_start_in_another_class_offers_a_restart_and_the_page_restarts_after_a_confirmation(page, hub):
    log_in(page, hub, "alice")
    page.select_option("#workspace", "alpha")
    page.select_option("#image", "python")
    page.select_option("#resource_class", "large")
    page.click("#start-form button")
    wait_for(lambda: (admin_request(hub, "GET", "/users/alice")[1]["servers"].get("alpha-python") or {}).get("ready"))
    # back on the list, the form offers what the server runs with
    page.goto(hub.service_url)
    page.select_option("#workspace", "alpha")
    page.select_option("#image", "python")
    assert page.input_value("#resource_class") == "large"
    page.select_option("#resource_class", "small")
    page.click("#start-form button")
    page.wait_for_url(hub.service_url + "alpha/python/-/details?resource_class=small")
    offer = page.locator("#restart-offer")
    assert "This server runs as Large. Restart it as Small" in offer.inner_text()
    screenshot(page, "details-restart-offer.png")
    page.click("#restart-offered")
    wait_for(
        lambda: (
            (admin_request(hub, "GET", "/users/alice")[1]["servers"].get("alpha-python") or {})
            .get("user_options", {})
            .get("resource_class")
            == "small"
        ),
        message="the restart in the small class",
    )
    page.wait_for_url(re.compile(r".*/user/alice/alpha-python/.*"), timeout=30_000)  # and into the server again

    # from its page: choose the class, then Restart asks first
    page.goto(hub.service_url + "alpha/python/-/details")
    started = page.get_attribute("#started", "datetime")
    page.select_option("#restart-class", "large")
    page.click("#restart")
    assert page.inner_text("#restart") == "Restart alpha/python?"  # armed: nothing sent yet
    assert admin_request(hub, "GET", "/users/alice")[1]["servers"]["alpha-python"]["started"] == started
    page.click("#restart")
    page.wait_for_url(re.compile(r".*/user/alice/alpha-python/.*"), timeout=30_000)
    model = admin_request(hub, "GET", "/users/alice")[1]["servers"]["alpha-python"]
    assert model["user_options"]["resource_class"] == "large" and model["started"] != started

    # Stop asks first too
    page.goto(hub.service_url + "alpha/python/-/details")
    page.click("#stop")
    page.click("#stop")
    page.wait_for_url(hub.service_url)
    wait_for(lambda: "alpha-python" not in admin_request(hub, "GET", "/users/alice")[1]["servers"], message="stopped")


def test_the_log_page_wraps_bounds_and_follows_hostile_output(page, hub, tokens):
    start_as(hub, tokens["alice"], "alpha/minimal")
    output = local_log_path(os.path.join(hub.run_dir, "logs"), "alice", "alpha-minimal")
    with open(output, "ab") as f:
        f.write(b"<script>window.injected = 1</script><img src=x onerror='window.injected=2'>\n")
        f.write(b"\x1b[31mred\x1b[0m and a NUL \x00 and a bell \x07\n")
        f.write(b"x" * 300_000 + b"\n")  # one enormous line: cut to max_log_line_bytes
        f.writelines(b"line %d of many\n" % i for i in range(20_000))
    log_in(page, hub, "alice")
    page.goto(hub.service_url + "alpha/minimal/-/logs")
    assert page.evaluate("window.injected") is None  # the server's output is text, never markup
    lines = lambda: page.inner_text("#log").rstrip("\n").split("\n")  # noqa: E731
    assert lines()[-1] == "line 19999 of many"
    wait_for(lambda: page.inner_text("#follow-state") == "following", timeout=10, message="following")
    # while the stream repeats them, the page keeps showing its last line (it once fell back to half)
    wait_for(
        lambda: lines()[-1] == "line 19999 of many" and len(lines()) == 1000,
        timeout=10,
        message="the stream's last 1000 lines",
    )
    # a new line appears by itself; the page keeps no more than it was asked for
    with open(output, "ab") as f:
        f.write(b"a line printed just now\n")
    wait_for(lambda: lines()[-1] == "a line printed just now", timeout=10, message="the live line")
    assert len(lines()) == 1000 and lines()[0] == "line 19001 of many"
    screenshot(page, "server-log.png")  # wrapped: nothing wider than a phone
    # fewer lines, as the API takes them; nonsense is a page saying so
    page.goto(hub.service_url + "alpha/minimal/-/logs?tail=5")
    assert page.inner_text("#log").rstrip().split("\n")[-1] == "a line printed just now"
    page.goto(hub.service_url + "alpha/minimal/-/logs?tail=99999999")
    assert "tail must be a number of lines from 0 to 10000" in page.inner_text("main")


# -- the workspace as a team: its room, sharing -----------------------------------------------------


def test_the_start_form_says_how_full_a_workspace_is_and_a_start_over_its_quota_says_what_runs(page, hub, tokens):
    start_as(hub, tokens["alice"], "beta/minimal")
    log_in(page, hub, "alice")
    page.select_option("#workspace", "beta")
    wait_for(
        lambda: page.inner_text("#workspace-room").startswith("In beta: 1 of 1 running servers in use."), timeout=10
    )
    page.select_option("#workspace", "alpha")
    assert page.inner_text("#workspace-room") == ""  # no quota there
    page.select_option("#workspace", "beta")
    page.select_option("#image", "python")
    screenshot(page, "start-form-room.png")
    # sent all the same (a tab opened before the room was taken): the refusal says what runs, and leads back
    page.evaluate("document.getElementById('start-form').submit()")
    page.wait_for_load_state()
    assert "Workspace beta allows 1 running server: alice's beta/minimal runs." in page.inner_text("main")
    assert page.locator("main a", has_text="Back to your notebook servers").count() == 1
    screenshot(page, "quota-refused.png")


def test_sharing_from_the_servers_page_and_the_recipients_list(browser, page, hub, tokens):
    start_as(hub, tokens["alice"], "alpha/minimal")
    log_in(page, hub, "alice")
    page.goto(hub.service_url + "alpha/minimal/-/details")
    assert "only you can open it" in page.inner_text("#sharing")
    page.fill("#share-users", "bob")
    page.click("#share")
    page.wait_for_url(hub.service_url + "alpha/minimal/-/details")
    assert page.inner_text("#shared-with").split()[0] == "bob"
    screenshot(page, "details-shared.png")
    # bob sees it under "Shared with me", and opens it from there
    context = browser.new_context(viewport=DESKTOP)
    other = context.new_page()
    try:
        log_in(other, hub, "bob")
        item = other.locator("#shared-with-me li[data-shared='alice/alpha-minimal']")
        assert "alice's alpha / Minimal (single document)" in item.inner_text() and "running" in item.inner_text()
        screenshot(other, "shared-with-me.png")
    finally:
        context.close()
    # and with the whole workspace, members who join later too
    page.check("#share-workspace")
    page.click("#share")
    page.wait_for_url(hub.service_url + "alpha/minimal/-/details")
    assert "everyone in alpha" in page.inner_text("#shared-with-workspace")
    screenshot(page, "details-shared-workspace.png")
    page.click("#shared-with-workspace button")
    page.click("#shared-with-workspace button")
    page.wait_for_url(hub.service_url + "alpha/minimal/-/details")
    assert page.locator("#shared-with-workspace").count() == 0
    # stop sharing asks first
    page.click("#shared-with button")
    assert page.inner_text("#shared-with button") == "Stop sharing with bob?"
    page.click("#shared-with button")
    page.wait_for_url(hub.service_url + "alpha/minimal/-/details")
    assert page.locator("#shared-with-nobody").is_visible()


def test_a_long_server_name_is_cut_and_the_details_log_waits_to_be_opened(page, hub, tokens):
    """A display name the Hub took (255 characters, through its own API) does not stretch the list;
    the details page keeps the server's start-up lines closed, and shows the last 50 when opened."""
    long_name = "n" * 255
    started = requests.post(
        f"{hub.url}/hub/api/users/alice/servers/alpha-minimal",
        headers={"Authorization": f"token {tokens['alice']}"},
        json={"display_name": long_name, "user_options": {"workspace": "alpha", "image": "minimal"}},
    )
    assert started.status_code in (201, 202), started.text
    wait_for(lambda: admin_request(hub, "GET", "/users/alice")[1]["servers"]["alpha-minimal"]["ready"])
    output = local_log_path(os.path.join(hub.run_dir, "logs"), "alice", "alpha-minimal")
    with open(output, "ab") as f:
        f.writelines(b"start-up line %d\n" % i for i in range(300))
    log_in(page, hub, "alice")
    row = page.locator("tr[data-server=alpha-minimal]")
    stop = row.locator("button", has_text="Stop")
    stop.click()  # armed: it asks, naming the server, cut
    assert stop.inner_text() == "Stop " + "n" * 23 + "…?"
    assert stop.bounding_box()["width"] < 300
    screenshot(page, "server-list-long-name.png")

    page.goto(hub.service_url + "alpha/minimal/-/details")
    panel = page.locator("#server-log-panel")
    assert panel.get_attribute("open") is None and page.text_content("#server-log") == "…"  # not read yet
    screenshot(page, "details-log-closed.png")
    page.click("#server-log-panel summary")
    wait_for(lambda: page.inner_text("#server-log") != "…", timeout=10, message="the log to load")
    lines = page.inner_text("#server-log").rstrip("\n").split("\n")
    assert len(lines) == 50 and lines[-1] == "start-up line 299"


def test_a_refused_share_comes_back_as_the_form_with_the_reason_and_the_names_typed(page, hub, tokens):
    start_as(hub, tokens["alice"], "alpha/minimal")
    log_in(page, hub, "alice")
    page.goto(hub.service_url + "alpha/minimal/-/details")
    page.fill("#share-users", "bobb")  # a typo
    page.click("#share")
    error = page.locator("#share-error")
    error.wait_for(state="visible", timeout=10_000)
    assert error.inner_text() == (
        "Only members of workspace alpha may be given a share: 'bobb' is not. Nothing changed."
    )
    assert page.input_value("#share-users") == "bobb"  # kept, to be mended
    assert "Nobody else: only you can open it." in page.inner_text("#sharing")
    screenshot(page, "share-refused.png")
    page.fill("#share-users", "bob")
    page.click("#share")
    page.wait_for_url(hub.service_url + "alpha/minimal/-/details")
    assert page.locator("#share-error").count() == 0 and "bob" in page.inner_text("#shared-with")


def test_a_full_workspaces_form_says_whose_servers_hold_it_and_does_not_offer_start(page, hub, tokens):
    start_as(hub, tokens["alice"], "beta/minimal")  # beta allows one running server
    log_in(page, hub, "alice")
    page.select_option("#workspace", "beta")
    said = page.locator("#workspace-room")
    assert said.inner_text() == (
        "In beta: 1 of 1 running servers in use. No server can start there until one stops: your beta/minimal."
    )
    assert page.locator("#start-button").is_disabled()
    assert said.locator("a").get_attribute("href") == hub.service_url.removeprefix(hub.url) + "beta/minimal/-/details"
    screenshot(page, "start-form-full-workspace.png")
    page.select_option("#workspace", "alpha")  # another workspace: room, and Start
    assert not page.locator("#start-button").is_disabled()

    # a colleague's view: whose server it is, no link into it
    set_members(hub, {"alice": ["alpha", "beta"], "bob": ["alpha", "beta"]})
    page.context.clear_cookies()
    log_in(page, hub, "bob")
    page.select_option("#workspace", "beta")
    assert said.inner_text().endswith("No server can start there until one stops: alice's beta/minimal.")
    assert said.locator("a").count() == 0 and page.locator("#start-button").is_disabled()
