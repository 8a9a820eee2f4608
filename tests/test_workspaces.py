import pytest

from notebooks_service.errors import NotAMember
from notebooks_service.hub import HubClient
from notebooks_service.workspaces import HubGroupsWorkspacePolicy, StaticWorkspacePolicy

from conftest import ADMIN_TOKEN, admin_request


async def test_static_policy_reads_the_member_map():
    policy = StaticWorkspacePolicy(members={"alice": ["alpha", "beta"], "bob": ["alpha"]})
    assert await policy.workspaces({"name": "alice"}) == {"alpha", "beta"}
    assert await policy.workspaces({"name": "carol"}) == set()
    await policy.check_member({"name": "bob"}, "alpha")
    with pytest.raises(NotAMember) as e:
        await policy.check_member({"name": "bob"}, "beta")
    assert e.value.status_code == 403 and "not a member of workspace 'beta'" in e.value.message


def test_group_template_needs_one_placeholder():
    with pytest.raises(Exception, match="exactly once"):
        HubGroupsWorkspacePolicy(group_template="workspace-admins")


@pytest.mark.hub_version
async def test_hub_groups_policy_against_real_hub_groups(hub):
    """Groups made in the real Hub, read back through the service's Hub client."""
    for group, members in {"ws-gamma": ["alice"], "ws-delta": ["alice", "bob"], "gamma-admins": ["bob"]}.items():
        status, _ = admin_request(hub, "POST", f"/groups/{group}", {"users": members})
        assert status in (201, 409)
    client = HubClient(api_url=f"{hub.url}/hub/api", api_token=ADMIN_TOKEN)
    policy = HubGroupsWorkspacePolicy(group_template="ws-{workspace}")
    alice = await client.get_user("alice")
    bob = await client.get_user("bob")
    assert await policy.workspaces(alice) == {"gamma", "delta"}
    assert await policy.workspaces(bob) == {"delta"}  # "gamma-admins" is not a workspace group
    with pytest.raises(NotAMember):
        await policy.check_member(bob, "gamma")


async def test_default_group_template_uses_the_group_name_as_is():
    policy = HubGroupsWorkspacePolicy()
    assert await policy.workspaces({"name": "a", "groups": ["alpha", "beta"]}) == {"alpha", "beta"}
