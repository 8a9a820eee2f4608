"""HubOAuth that any replica of the service can complete.

JupyterHub's HubOAuth keeps each login's OAuth state (where to go next, the
PKCE code verifier, the state cookie's name) in the memory of the process that
started the login. Behind a Service with several replicas and no sticky
sessions, the callback often reaches another replica, which then knows neither
the next URL nor the verifier, and the Hub refuses the code. Here the state id
*is* the state, signed (HMAC-SHA256) with a key derived from the cookie secret
that all replicas share, and it expires like HubOAuth's own.

Nothing secret travels in it: the PKCE code verifier is ``<seed>.<HMAC of the
seed>``, so the state carries the seed and any replica derives the verifier
again; who reads the state (it is in the login URL) cannot. The standard
library does it all: no cipher is loaded for a login.

Its scope check is HubAuth's, shown only the caller's scopes that can matter
(see ``check_scopes``), so that JupyterHub's memo of it holds one entry, not one
per user.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from jupyterhub.services.auth import HubOAuth
from traitlets import Bytes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SharedStateHubOAuth(HubOAuth):
    """HubOAuth whose OAuth state travels signed in the state id instead of process memory."""

    state_secret = Bytes(help="Secret the OAuth state is signed with: the service's shared cookie secret.")

    def _mac(self, purpose: bytes, data: str) -> str:
        if not self.state_secret:
            raise ValueError("SharedStateHubOAuth needs state_secret")
        key = hashlib.sha256(b"notebooks-service oauth state\0" + self.state_secret).digest()
        return _b64(hmac.new(key, purpose + b"\0" + data.encode(), hashlib.sha256).digest())

    def _verifier(self, seed: str) -> str:
        return f"{seed}.{self._mac(b'pkce', seed)}"  # 66 characters of RFC 7636's alphabet

    def generate_pkce_code_challenge(self, method: str = "S256") -> tuple[str, str, str]:
        """JupyterHub 6's PKCE, with a verifier any replica can derive from its seed (see the module)."""
        if method != "S256":
            raise ValueError(f"Only method='S256' is supported, not {method!r}")
        verifier = self._verifier(secrets.token_urlsafe(16))
        return verifier, _b64(hashlib.sha256(verifier.encode()).digest()), method

    def generate_state(self, next_url: str | None = None, **extra_state: Any) -> str:
        verifier = extra_state.pop("code_verifier", None)
        state = {"next_url": next_url, **extra_state, "issued": int(time.time()), "nonce": secrets.token_urlsafe(8)}
        if verifier:
            seed = verifier.split(".", 1)[0]
            if verifier != self._verifier(seed):  # not ours: it could not be derived again, nor be sent in clear
                raise ValueError("The PKCE code verifier was not made by generate_pkce_code_challenge")
            state["pkce_seed"] = seed
        payload = _b64(json.dumps(state, separators=(",", ":")).encode())
        return f"{payload}.{self._mac(b'state', payload)}"

    def _decode_state(self, state_id: str, /) -> dict[str, Any]:
        payload, _, mac = (state_id or "").rpartition(".")
        if not payload or not hmac.compare_digest(mac.encode(), self._mac(b"state", payload).encode()):
            return {}  # forged or foreign: HubOAuth then falls back to its defaults
        try:
            state = json.loads(_unb64(payload))
        except ValueError:
            return {}
        issued = state.get("issued") if isinstance(state, dict) else None
        if not isinstance(issued, int) or not 0 <= time.time() - issued <= self.oauth_state_max_age:
            return {}  # expired (or from the future)
        seed = state.pop("pkce_seed", None)
        if isinstance(seed, str):
            state["code_verifier"] = self._verifier(seed)
        return state

    def clear_oauth_state(self, state_id: str) -> None:
        pass  # nothing is stored: the state cookie, cleared by HubOAuth, was its only other copy

    def check_scopes(self, required_scopes: str | set[str], user: dict[str, Any]) -> set[str]:
        """HubAuth's check of ``user``'s scopes, given only those of the bases it asks about.

        The answer is the same: JupyterHub intersects scopes base by base
        (``access:services!service=x`` meets only ``access:services...``). But it memoises
        each intersection under the whole set, which names the user (``read:users!user=alice``,
        ...): about 10 KB kept per user who calls, up to 1,024 users. Narrowed, every user with
        the same access shares one entry.
        """
        required = {required_scopes} if isinstance(required_scopes, str) else set(required_scopes)
        bases = {scope.partition("!")[0] for scope in required}
        held = [scope for scope in user.get("scopes") or () if scope.partition("!")[0] in bases]
        return super().check_scopes(required, {**user, "scopes": held})
