"""The identity provider's JWTs (e.g. Keycloak's access tokens): verified, and named as Hub users.

``IdentityProvider`` checks a token against the provider's JWKS (signature,
issuer, audience, expiry, ``azp``, ``typ``) and says which Hub user it names.
``auth.py`` uses it to let JSON clients in with a Bearer JWT
(``accept_bearer_jwt``); ``ClaimsWorkspacePolicy`` uses it to read the
workspaces of a token. No dependency on the service process: the Hub-side
guard imports it too.
"""

import asyncio
from typing import TYPE_CHECKING, Any

from traitlets import Bool, Float, List, Unicode, validate
from traitlets.config import LoggingConfigurable

from .errors import NotAMember, ServiceError, TokenExpired, Unauthorized

if TYPE_CHECKING:
    import jwt


class IdentityProvider(LoggingConfigurable):
    """The OIDC provider whose access tokens the service trusts."""

    jwks_url = Unicode(
        help="The identity provider's JWKS URL, e.g. https://idp/realms/eodh/protocol/openid-connect/certs"
    ).tag(config=True)
    issuer = Unicode(help="Required 'iss' of tokens.").tag(config=True)
    audience = Unicode(
        "",
        help="""Required 'aud' of tokens: the client id the provider puts there for this platform
        (Keycloak: add an audience mapper). Empty: not checked, which is allowed only while
        accept_bearer_jwt is off (tokens then come from the Hub's own login).""",
    ).tag(config=True)
    authorized_parties = List(
        Unicode(),
        help="""If set, the client a token was issued to must be one of these: its 'azp' claim
        (Keycloak), or else its 'client_id' claim (RFC 9068 access tokens).""",
    ).tag(config=True)
    token_type = Unicode(
        "",
        help="""If set, only tokens of this type are accepted, as the token's 'typ' claim
        (Keycloak: 'Bearer' for access tokens, 'ID' for ID tokens) or its header's 'typ'
        (RFC 9068: 'at+jwt') says. 'Bearer' and 'at+jwt' both mean "an access token" and
        accept either shape; an ID token offered as an access token is refused.""",
    ).tag(config=True)
    algorithms = List(
        Unicode(),
        ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"],
        help="Accepted signature algorithms. Only public-key ones; 'none' and HS* are never accepted.",
    ).tag(config=True)
    accept_bearer_jwt = Bool(
        False,
        help="""Let JSON clients authenticate with 'Authorization: Bearer <JWT>' from the identity
        provider. Needs audience, and the scope 'tokens' in the service's Hub role (to check that
        the user holds the service's access scope, as Hub tokens must).""",
    ).tag(config=True)
    username_claim = Unicode(
        "preferred_username",
        help="""Claim of a Bearer JWT that names the Hub user: the same claim the Hub's authenticator
        uses (OAuthenticator: GenericOAuthenticator.username_claim), so both name one person alike.""",
    ).tag(config=True)
    lowercase_usernames = Bool(
        True,
        help="""Lowercase the username claim, as JupyterHub's Authenticator.normalize_username does
        by default. Turn off only if the Hub's authenticator keeps case.""",
    ).tag(config=True)
    leeway = Float(30, help="Seconds of clock skew tolerated on 'exp' and 'nbf'.").tag(config=True)
    jwks_cache_seconds = Float(300, help="How long fetched keys are trusted before the JWKS is read again.").tag(
        config=True
    )
    jwks_refetch_cooldown = Float(
        10, help="Least seconds between JWKS refetches caused by an unknown key id (rotation)."
    ).tag(config=True)
    jwks_timeout = Float(10, help="Seconds to wait for the JWKS endpoint.").tag(config=True)

    @validate("algorithms")
    def _public_key_only(self, proposal):
        bad = [a for a in proposal.value if a.lower() == "none" or a.upper().startswith("HS")]
        if bad:
            raise ValueError(f"algorithms {bad} are not accepted: only public-key signatures")
        return proposal.value

    def check_config(self) -> None:
        """Raise ValueError at start-up if tokens cannot be verified as configured."""
        if not self.jwks_url or not self.issuer:
            raise ValueError("IdentityProvider needs jwks_url and issuer")
        if self.accept_bearer_jwt and not self.audience:
            raise ValueError(
                "IdentityProvider.accept_bearer_jwt needs IdentityProvider.audience: "
                "without it a token the provider issued to any other client would be accepted"
            )

    def username(self, claims: dict[str, Any]) -> str:
        """The Hub username a verified token names, normalised as the Hub's authenticator does."""
        name = claims.get(self.username_claim)
        if not isinstance(name, str) or not name.strip():
            raise Unauthorized(f"The access token has no {self.username_claim!r} claim.")
        name = name.strip()
        return name.lower() if self.lowercase_usernames else name

    _jwks_client = None

    @property
    def jwks_client(self) -> "jwt.PyJWKClient":
        import jwt  # PyJWT loads cryptography (9 MB): only in a process that verifies JWTs

        if self._jwks_client is None:
            self._jwks_client = jwt.PyJWKClient(
                self.jwks_url,
                cache_jwk_set=True,
                lifespan=self.jwks_cache_seconds,
                timeout=self.jwks_timeout,
                cooldown_duration=self.jwks_refetch_cooldown,
            )
        return self._jwks_client

    async def verify(self, token: str, *, allow_expired: bool = False) -> dict[str, Any]:
        """The token's claims once signature, issuer, audience and expiry check out; else 401/403/503.

        ``allow_expired``: what the last token the provider issued says, expired or not (for
        another user's membership, whose token only the Hub renews, when they are active).
        """
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("The access token is malformed.") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise Unauthorized(f"Access tokens signed with {algorithm!r} are not accepted.")
        try:
            # PyJWKClient fetches with blocking I/O: keep it off the event loop
            key = await asyncio.to_thread(self.jwks_client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError:
            self.log.error("Cannot fetch the identity provider's keys from %s", self.jwks_url)
            raise ServiceError(
                "Cannot verify your access token: the identity provider is not reachable.", 503
            ) from None
        except jwt.PyJWTError:
            raise Unauthorized(
                "The access token is signed with a key the identity provider does not publish."
            ) from None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience or None,
                leeway=self.leeway,
                options={"require": ["exp", "iss"], "verify_aud": bool(self.audience), "verify_exp": not allow_expired},
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpired("The access token has expired: log in again.") from None
        except jwt.InvalidSignatureError:
            raise Unauthorized("The access token's signature does not verify.") from None
        except jwt.InvalidIssuerError:
            raise NotAMember(f"The access token was not issued by {self.issuer}.") from None
        except jwt.InvalidAudienceError:
            raise NotAMember(f"The access token is not meant for {self.audience}.") from None
        except jwt.PyJWTError as e:
            raise Unauthorized(f"The access token is not valid: {e}") from None
        # Keycloak names the client in 'azp'; RFC 9068 access tokens in 'client_id'
        party = claims.get("azp", claims.get("client_id"))
        if self.authorized_parties and party not in self.authorized_parties:
            raise NotAMember(f"The access token was issued to {str(party)[:80]!r}, not to this platform.")
        if self.token_type and not _is_of_type(self.token_type, claims.get("typ"), header.get("typ")):
            said = claims.get("typ", header.get("typ"))
            raise NotAMember(f"This is not an access token (its type is {str(said)[:40]!r}).")
        return claims


#: what marks an access token: Keycloak's 'typ' claim, RFC 9068's header 'typ' (media type, lowercase)
ACCESS_TOKEN_TYPES = {"bearer", "at+jwt", "application/at+jwt"}


def _is_of_type(wanted: str, claimed: Any, header_type: Any) -> bool:
    """Whether a token's 'typ' claim or header 'typ' is ``wanted`` (any access-token spelling, if that is wanted)."""
    said = {str(t).lower() for t in (claimed, header_type) if isinstance(t, str)}
    wanted = wanted.lower()
    if wanted in ACCESS_TOKEN_TYPES:
        return bool(said & ACCESS_TOKEN_TYPES)
    return wanted in said
