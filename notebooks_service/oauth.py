"""HubOAuth that any replica of the service can complete.

JupyterHub's HubOAuth keeps each login's OAuth state (where to go next, the
PKCE code verifier, the state cookie's name) in the memory of the process that
started the login. Behind a Service with several replicas and no sticky
sessions, the callback often reaches another replica, which then knows neither
the next URL nor the verifier, and the Hub refuses the code. Here the state id
*is* the state, encrypted and authenticated with a key derived from the
cookie secret that all replicas share; it expires like HubOAuth's own.
"""

import base64
import hashlib
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from jupyterhub.services.auth import HubOAuth
from traitlets import Bytes


class SharedStateHubOAuth(HubOAuth):
    """HubOAuth whose OAuth state travels encrypted in the state id instead of process memory."""

    state_secret = Bytes(help="Secret the OAuth state is encrypted with: the service's shared cookie secret.")

    @property
    def _fernet(self) -> Fernet:
        if not self.state_secret:
            raise ValueError("SharedStateHubOAuth needs state_secret")
        key = hashlib.sha256(b"notebooks-service oauth state\0" + self.state_secret).digest()
        return Fernet(base64.urlsafe_b64encode(key))

    def generate_state(self, next_url: str | None = None, **extra_state: Any) -> str:
        state = {"next_url": next_url, **extra_state, "nonce": secrets.token_urlsafe(8)}
        return self._fernet.encrypt(json.dumps(state).encode()).decode("ascii")

    def _decode_state(self, state_id: str, /) -> dict[str, Any]:
        try:
            return json.loads(self._fernet.decrypt(state_id.encode("ascii"), ttl=int(self.oauth_state_max_age)))
        except (InvalidToken, ValueError, UnicodeEncodeError):
            return {}  # forged, expired or foreign: HubOAuth then falls back to its defaults

    def clear_oauth_state(self, state_id: str) -> None:
        pass  # nothing is stored: the state cookie, cleared by HubOAuth, was its only other copy
