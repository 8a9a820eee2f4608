import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

try:  # JupyterHub 6's own rule for new server names; 5.x has none to compare with
    from jupyterhub.slugs import is_valid_safe_slug
except ImportError:
    is_valid_safe_slug = None

from notebooks_service.errors import InvalidRequest
from notebooks_service.naming import (
    check_workspace,
    is_valid_server_name,
    is_valid_workspace,
    label_value,
    pod_name,
    server_name,
)

# matched whole, as the code matches: '$' would accept a trailing newline
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

workspaces = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,58}[a-z0-9])?", fullmatch=True)
images = st.text(alphabet=string.ascii_letters + string.digits + "-_.:@ é", min_size=1, max_size=80)


def test_simple_pair_keeps_its_readable_name():
    assert server_name("alpha", "python") == "alpha-python"


def test_long_or_hyphenated_pairs_get_a_hash_suffix():
    name = server_name("my-workspace", "python")
    assert name.startswith("my-workspace-python-")
    assert len(server_name("a" * 60, "python")) <= 30


def test_hyphens_cannot_make_two_pairs_meet():
    assert server_name("a-b", "c") != server_name("a", "b-c")


@given(workspaces, images)
def test_server_names_are_valid_for_the_hub(workspace, image):
    assert is_valid_server_name(server_name(workspace, image))


@pytest.mark.skipif(is_valid_safe_slug is None, reason="jupyterhub.slugs is JupyterHub 6's")
@given(workspaces, images)
def test_jupyterhubs_own_rule_agrees_with_ours(workspace, image):
    name = server_name(workspace, image)
    assert is_valid_safe_slug(name), name


def test_server_names_never_change_between_releases():
    # a changed rule would orphan every running server: these are pinned
    assert server_name("my-workspace", "python") == "my-workspace-python-3150b448"
    assert server_name("a" * 60, "python") == "aaaaaaaaaaaaaaaaaaaaa-79c5339e"
    assert server_name("alpha", "Python 3.12") == "alpha-python-3-12-6080b849"


def test_names_are_matched_whole_so_a_trailing_newline_is_refused():
    assert not is_valid_workspace("alpha\n")
    assert not is_valid_server_name("alpha-python\n")
    assert server_name("alpha\n", "python") != "alpha-python"


@given(st.tuples(workspaces, images), st.tuples(workspaces, images))
def test_distinct_pairs_get_distinct_names(a, b):
    if a != b:
        assert server_name(*a) != server_name(*b)


@given(workspaces)
def test_valid_workspaces_make_namespace_names(workspace):
    assert is_valid_workspace(workspace)
    namespace = f"ws-{workspace}"
    assert len(namespace) <= 63 and DNS_LABEL.fullmatch(namespace)


@given(st.text(max_size=70))
def test_workspace_check_matches_the_dns_rule(workspace):
    expected = len(f"ws-{workspace}") <= 63 and bool(DNS_LABEL.fullmatch(workspace))
    assert is_valid_workspace(workspace) == expected


def test_invalid_workspace_is_a_400_that_says_why():
    for bad in ["Alpha", "-alpha", "alpha-", "al_pha", "a" * 61, "", "al.pha"]:
        try:
            check_workspace(bad)
        except InvalidRequest as e:
            assert e.status_code == 400
            assert "Invalid workspace name" in e.message
        else:
            raise AssertionError(f"{bad!r} accepted")


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=30))
def test_pod_names_are_always_dns_labels_and_tell_users_apart(user, server):
    name = pod_name(user, server)
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
    assert pod_name(user + "x", server) != name


def test_plain_pod_names_are_what_kubespawner_would_call_them():
    assert pod_name("alice", "alpha-python") == "jupyter-alice--alpha-python"


LABEL = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)?")


def test_a_chosen_name_cannot_take_another_users_label():
    hashed = label_value("alice@example.org")
    assert hashed.startswith("alice-example.org--")
    # a user who picks exactly that name (or the old hashed form) keeps a label of their own
    assert label_value(hashed) != hashed
    assert label_value("alice-example.org-7a64adf2") == "alice-example.org-7a64adf2"
    assert label_value("alice-example.org-7a64adf2") != hashed


@given(st.text(max_size=100))
def test_label_values_are_valid_and_plain_ones_never_look_hashed(value):
    label = label_value(value)
    assert len(label) <= 63 and LABEL.fullmatch(label), label
    # kept whole, without '--'; or hashed, always with '--': the two kinds never meet
    assert (label == value and "--" not in value) or "--" in label


@given(st.text(max_size=70), st.text(max_size=70))
def test_distinct_values_get_distinct_labels(a, b):
    if a != b:
        assert label_value(a) != label_value(b)


@given(st.text(min_size=1, max_size=40), st.sampled_from(["alpha-python", "a-b-3f2a9c1b", "x"]))
def test_plain_pod_names_never_look_hashed(user, server):
    name = pod_name(user, server)
    assert (name == f"jupyter-{user}--{server}" and "---" not in name) or "---" in name


def test_a_user_named_like_a_hashed_pod_gets_another_pod():
    hashed = pod_name("Bob", "alpha-python")
    assert "---" in hashed
    assert pod_name(hashed[len("jupyter-") :], "alpha-python") != hashed
    assert pod_name("a--b", "c") != pod_name("a", "b--c")
