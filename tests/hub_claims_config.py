# The test Hub, with the claims policy: auth_state on, and the roles that reading it needs.
import os

load_subconfig(os.path.join(os.path.dirname(__file__), "hub_test_config.py"))  # noqa: F821

c = get_config()  # noqa: F821
c.Authenticator.enable_auth_state = True  # needs $JUPYTERHUB_CRYPT_KEY
c.JupyterHub.load_roles.append(
    {"name": "notebooks-auth-state", "scopes": ["admin:auth_state"], "services": ["notebooks", "test-admin"]}
)
