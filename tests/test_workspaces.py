import pytest

from notebooks_service.errors import HubError, HubUnavailable, NotAMember, NotFound, ServerBusy
from notebooks_service.hub import HubClient
from notebooks_service.idp import IdentityProvider
from notebooks_service.sharing import Sharing
from notebooks_service.workspaces import (
    ClaimsWorkspacePolicy,
    HubGroupsWorkspacePolicy,
    StaticWorkspacePolicy,
    recorded_membership,
)

from conftest import ADMIN_TOKEN, admin_request
from identity_provider import ISSUER


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


class AnsweringHub:
    """What Sharing asks of the Hub client: a user's model, or the error the Hub's answer maps to."""

    def __init__(self, answer):
        self.answer = answer

    async def get_user(self, name, *, fresh=False):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def every_policy(idp):
    claims = ClaimsWorkspacePolicy(identity_provider=IdentityProvider(jwks_url=idp.jwks_url, issuer=ISSUER))
    return [StaticWorkspacePolicy(members={"bob": ["alpha"]}), HubGroupsWorkspacePolicy(), claims]


@pytest.mark.parametrize(
    "hub_error",
    [
        HubUnavailable("The Hub is not answering right now"),  # a 502/503/504, or no connection
        ServerBusy("The Hub is busy", 503),  # a 429 after its retries
        HubError("The Hub answered 500"),
    ],
)
async def test_a_hub_that_cannot_answer_is_unknown_for_every_policy(idp, hub_error):
    for policy in every_policy(idp):
        sharing = Sharing(hub=AnsweringHub(hub_error), policy=policy)
        verdict = await sharing.membership("bob", "alpha")
        assert (verdict.state, verdict.left, verdict.member) == ("unknown", False, False), policy
        assert verdict.reason.startswith("The Hub")


async def test_a_deleted_user_has_left_for_every_policy(idp):
    for policy in every_policy(idp):
        sharing = Sharing(hub=AnsweringHub(NotFound("No such Hub user: 'bob'")), policy=policy)
        assert (await sharing.membership("bob", "alpha")).left


async def test_claims_whose_keys_cannot_be_fetched_are_unknown_and_a_token_without_the_workspace_is_left(idp):
    token = idp.token(workspaces=["alpha"])
    bob = {"name": "bob", "groups": [], "auth_state": {"access_token": token}}
    down = ClaimsWorkspacePolicy(
        identity_provider=IdentityProvider(jwks_url="http://127.0.0.1:1/certs", issuer=ISSUER, jwks_timeout=2)
    )
    verdict = await recorded_membership(down, bob, "alpha")
    assert verdict.state == "unknown" and verdict.reason
    assert (await Sharing(hub=AnsweringHub(bob), policy=down).membership("bob", "alpha")).state == ("unknown")
    up = ClaimsWorkspacePolicy(identity_provider=IdentityProvider(jwks_url=idp.jwks_url, issuer=ISSUER))
    assert (await recorded_membership(up, bob, "alpha")).member
    assert (await recorded_membership(up, bob, "beta")).left
    assert (await recorded_membership(up, {"name": "bob", "auth_state": None}, "alpha")).left  # no token at all
    # a token this platform's provider did not issue is a definite no, not a blip
    foreign = {"name": "bob", "auth_state": {"access_token": idp.token(workspaces=["alpha"], iss="https://elsewhere")}}
    assert (await recorded_membership(up, foreign, "alpha")).left


async def test_static_and_hub_group_policies_answer_member_or_left():
    static = StaticWorkspacePolicy(members={"bob": ["alpha"]})
    assert (await recorded_membership(static, {"name": "bob"}, "alpha")).member
    assert (await recorded_membership(static, {"name": "bob"}, "beta")).left
    groups = HubGroupsWorkspacePolicy(group_template="ws-{workspace}")
    assert (await recorded_membership(groups, {"name": "bob", "groups": ["ws-alpha"]}, "alpha")).member
    assert (await recorded_membership(groups, {"name": "bob", "groups": ["ws-alpha"]}, "beta")).left


async def test_a_model_the_hub_showed_without_what_the_policy_reads_is_unknown_not_left(idp):
    """A role without read:users (groups) or admin:auth_state gets models without those keys: that is
    no evidence that anyone left."""
    groups = HubGroupsWorkspacePolicy(group_template="ws-{workspace}")
    assert (await recorded_membership(groups, {"name": "bob"}, "alpha")).state == "unknown"
    claims = ClaimsWorkspacePolicy(identity_provider=IdentityProvider(jwks_url=idp.jwks_url, issuer=ISSUER))
    assert (await recorded_membership(claims, {"name": "bob", "groups": []}, "alpha")).state == "unknown"
