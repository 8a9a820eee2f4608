"""The manual tells the truth: its curl session runs, as written, against a real Hub."""

import json
import os
import re
import shlex
import subprocess

import pytest

from conftest import stop_all_servers

pytestmark = pytest.mark.usefixtures("clean_servers")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SESSION = os.path.join(ROOT, "docs", "_curl-session.rst")


def session_commands() -> tuple[list[str], list[str]]:
    """The variable lines and the curl commands of the manual's "A complete session" block."""
    text = open(SESSION, encoding="utf-8").read()
    block = text.split("A complete session", 1)[1].split(".. code-block:: bash", 1)[1]
    lines = []
    for line in block.split("\n")[1:]:
        if line and not line.startswith("   "):
            break  # the block ends where the indentation does
        line = line.strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return [v for v in lines if re.match(r"^[A-Z]+=", v)], [c for c in lines if c.startswith("curl ")]


@pytest.fixture
def alice_token(tokens, hub):
    yield tokens.new("alice")
    stop_all_servers(hub, "alice")


def test_the_manuals_curl_session_runs_as_written(hub, alice_token, tmp_path):
    if subprocess.run(["curl", "--version"], capture_output=True).returncode != 0:
        pytest.skip("no curl here")
    variables, commands = session_commands()
    assert [c.split('"$API')[1].split('"')[0] for c in commands] == [
        "/",
        "/alpha/python",
        "/alpha/python/-/progress",
        "/alpha/python",
        "/alpha/python/-/logs?tail=20&format=text",
        "/alpha/python",
    ]
    # the session's own variable lines, with this Hub's URL for the demo's
    prelude = "\n".join(v.replace("http://127.0.0.1:8000", hub.url) for v in variables)
    answers = []
    for command in commands:
        script = f"{prelude}\n{command} -o {shlex.quote(str(tmp_path / 'body'))} -w '%{{http_code}}'"
        result = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=90, env={**os.environ, "TOKEN": alice_token}
        )
        assert result.returncode == 0, result.stderr
        answers.append((int(result.stdout), (tmp_path / "body").read_text()))
    (listed, none), (started, starting), (followed, events), (shown, model), (read, logs), (stopped, _) = answers
    assert (listed, json.loads(none)) == (200, [])
    assert started in (201, 202) and json.loads(starting)["name"] == "alpha-python"
    data = [json.loads(line[5:]) for line in events.splitlines() if line.startswith("data:")]
    assert followed == 200 and data[-1]["ready"] is True, events[-2000:]
    model = json.loads(model)
    assert shown == 200 and model["ready"] and model["url"] == "/user/alice/alpha-python/"
    assert read == 200 and "Jupyter Server" in logs
    assert stopped in (202, 204)
