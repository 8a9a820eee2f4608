"""In Chromium: a member removed from a workspace sees, on their own list, their server there stop and why.

The session Hub's reconciler checks every 3 s; the list page follows by itself (it reloads when a
row's membership changes). Screenshots go to test-artifacts/.
"""

import pytest

from conftest import set_members, wait_for
from in_browser import log_in, screenshot, start_as

pytestmark = [pytest.mark.usefixtures("clean_servers")]


def test_a_member_removed_from_a_workspace_sees_their_server_stop_and_why(page, hub, tokens):
    log_in(page, hub, "alice")
    start_as(hub, tokens["alice"], "alpha/minimal")
    page.reload()
    row = page.locator("tr[data-server=alpha-minimal]")
    assert "running" in row.locator(".state").inner_text()

    set_members(hub, {"alice": ["beta"], "bob": ["alpha"]})  # what an admin does on the Hub's admin page
    wait_for(
        lambda: "You are no longer a member of alpha" in row.inner_text() and "stopped" in row.inner_text(),
        timeout=40,
        interval=0.5,
        message="the row to say she left alpha and it stopped",
    )
    # nothing leads into it: no Open, Details, Keep running or Copy link; Remove is all there is
    assert row.locator("a").count() == 0
    assert row.locator("button").all_inner_texts() == ["Remove"]
    screenshot(page, "server-list-left-workspace.png")
    # its page is refused, and says why
    page.goto(hub.service_url + "alpha/minimal")
    assert "not a member of workspace 'alpha'" in page.inner_text("main")
    screenshot(page, "left-workspace-refused.png")
    # through the Hub's proxy: the Hub's own page says it is not running, and launching it from
    # there is refused by the Hub itself (the guard), saying why, with the way to the service
    page.goto(hub.url + "/user/alice/alpha-minimal/doc")
    assert "Your server alpha-minimal is not running." in page.inner_text("body")
    page.click("#start")
    wait_for(
        lambda: "not a member of workspace 'alpha'" in page.inner_text("body"),
        timeout=30,
        interval=0.5,
        message="the Hub to refuse the launch and say why",
    )
    assert page.locator("a", has_text="Open the notebooks service").count() >= 1
    screenshot(page, "left-workspace-launch-refused-by-the-hub.png")
