"""Run inside a materialised z2jh hub pod (tests/test_z2jh.py): what the real JupyterHub makes of z2jh's config.

    python z2jh_hub_check.py <jupyterhub_config.py> <service token> <alice's identity token>

Initialises JupyterHub from z2jh's own ``jupyterhub_config.py`` (everything but
listening and talking to the proxy, which ``start()`` would do), then follows
the Hub's own spawn sequence with KubeSpawner for a few requests of alice's.
Prints one JSON document: the registered service, its roles, and each spawn's
pod manifest or refusal.
"""

import asyncio
import json
import sys
from types import SimpleNamespace

import jupyterhub
from jupyterhub import orm
from jupyterhub.app import JupyterHub
from jupyterhub.utils import maybe_future
from kubernetes_asyncio.client import ApiClient

SPAWNS = {  # label: (server name, user_options)
    "member": ("alpha-python", {"workspace": "alpha", "image": "python"}),
    "not-a-member": ("beta-python", {"workspace": "beta", "image": "python"}),
    "unknown-image": ("alpha-cobol", {"workspace": "alpha", "image": "cobol"}),
    "profile-key": ("alpha-python", {"workspace": "alpha", "image": "python", "profile": "gpu"}),
    "default-server": ("", {}),  # the Hub's own "Start My Server"
}


async def spawn(user, server_name: str, options: dict) -> dict:
    if hasattr(user, "get_or_create_spawner"):  # JupyterHub 6
        spawner = user.get_or_create_spawner(server_name, server_name, replace_failed=True)
    else:
        spawner = user.get_spawner(server_name, replace_failed=True)
    spawner.handler = SimpleNamespace(current_user=SimpleNamespace(kind="user", name=user.name))
    try:
        # the Hub's sequence (User.spawn), then KubeSpawner.start()'s first step
        spawner.user_options = options
        await spawner._run_apply_user_options(options)
        await maybe_future(spawner.run_pre_spawn_hook())
        await spawner.load_user_options()
        pod = ApiClient().sanitize_for_serialization(await spawner.get_pod_manifest())
    except Exception as e:
        refusal = [getattr(e, "status_code", None), getattr(e, "message", None) or str(e)]
        return {"refused": refusal, "shown_by_the_hub": getattr(e, "jupyterhub_html_message", None)}
    return {"namespace": spawner.namespace, "pod": pod}


async def main(config_file: str, service_token: str, identity_token: str) -> dict:
    hub = JupyterHub.instance()  # as `jupyterhub` runs it (CryptKeeper reads its config from the instance)
    await hub.initialize(["--config", config_file])
    service = hub._service_map["notebooks"]
    token = orm.APIToken.find(hub.db, service_token)
    report = {
        "jupyterhub": jupyterhub.__version__,
        "spawner_class": f"{hub.spawner_class.__module__}.{hub.spawner_class.__name__}",
        "default_url": hub.default_url,
        "service": {
            "url": service.url,
            "oauth_client_id": service.oauth_client_id,
            "token_is_the_services": bool(token and token.service and token.service.name == "notebooks"),
            "roles": {r.name: sorted(r.scopes) for r in service.orm.roles},
        },
        "user_role": sorted(orm.Role.find(hub.db, "user").scopes),
        "services": sorted(hub._service_map),
        "culler_role": sorted(orm.Role.find(hub.db, "jupyterhub-idle-culler").scopes),
        "culler_command": hub._service_map["jupyterhub-idle-culler"].command,
        "reconciler_role": sorted(orm.Role.find(hub.db, "notebooks-reconciler").scopes),
        "reconciler_command": hub._service_map["notebooks-reconciler"].command,
    }
    orm_user = orm.User(name="alice")
    hub.db.add(orm_user)
    hub.db.commit()
    user = hub.users[orm_user]
    await user.save_auth_state({"access_token": identity_token})
    report["spawns"] = {label: await spawn(user, name, options) for label, (name, options) in SPAWNS.items()}
    return report


if __name__ == "__main__":
    result = asyncio.run(main(*sys.argv[1:4]))
    print("REPORT " + json.dumps(result))
