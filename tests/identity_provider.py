"""A test identity provider: real key pairs, signed tokens, and a JWKS served over HTTP."""

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "notebooks"
ISSUER = "https://idp.test/realms/platform"


class LocalIdentityProvider:
    """Signs tokens like Keycloak would, and publishes its public keys at ``jwks_url``."""

    def __init__(self):
        self.keys: dict[str, tuple[str, object]] = {}  # kid -> (alg, private key)
        self.published: list[str] = []  # kids in the JWKS
        self.jwks_requests = 0
        self.refresh_tokens: dict[str, dict] = {}  # refresh token -> claims of the access tokens it renews
        self.refused_refresh_tokens: list[str] = []  # what the token endpoint was asked to renew, and refused
        self.add_key("RS256")
        self.add_key("ES256")
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                provider.jwks_requests += 1
                body = json.dumps(provider.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                # the token endpoint, refresh_token grant only, answering as OIDC providers do
                from urllib.parse import parse_qs

                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                claims = provider.refresh_tokens.get(form.get("refresh_token", ""))
                if form.get("grant_type") != "refresh_token" or claims is None:
                    provider.refused_refresh_tokens.append(form.get("refresh_token", ""))
                    status, body = 400, {"error": "invalid_grant", "error_description": "Token is not active"}
                else:
                    status, body = 200, {"access_token": provider.token(**claims), "token_type": "Bearer"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.jwks_url = f"http://127.0.0.1:{self.server.server_address[1]}/certs"
        self.token_url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add_key(self, alg: str, publish: bool = True) -> str:
        kid = uuid.uuid4().hex[:12]
        key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if alg.startswith("RS")
            else ec.generate_private_key(ec.SECP256R1())
        )
        self.keys[kid] = (alg, key)
        if publish:
            self.published.append(kid)
        return kid

    def refresh_token(self, **claims) -> str:
        """A refresh token that renews access tokens with ``claims`` until revoked."""
        token = uuid.uuid4().hex
        self.refresh_tokens[token] = claims
        return token

    def jwks(self) -> dict:
        out = []
        for kid in self.published:
            alg, key = self.keys[kid]
            to_jwk = RSAAlgorithm.to_jwk if alg.startswith("RS") else ECAlgorithm.to_jwk
            out.append({**to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": out}

    def token(self, kid: str | None = None, *, expires_in: float = 300, header: dict | None = None, **claims) -> str:
        """A signed token; a claim given as None is left out, ``header`` adds to the JOSE header."""
        kid = kid or self.published[0]
        alg, key = self.keys[kid]
        now = int(time.time())
        # shaped like Keycloak's access tokens for a platform whose audience is "notebooks"
        payload = {
            "iss": ISSUER,
            "iat": now,
            "exp": now + int(expires_in),
            "aud": AUDIENCE,
            "azp": "jupyterhub",
            "typ": "Bearer",
            "preferred_username": "alice",
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, **(header or {})})

    def rfc9068_token(self, **claims) -> str:
        """Shaped as standards-strict providers issue access tokens: header 'typ: at+jwt', 'client_id', no 'azp'."""
        return self.token(header={"typ": "at+jwt"}, **{"typ": None, "azp": None, "client_id": "jupyterhub", **claims})

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def unsigned(token: str) -> str:
    """The same claims with ``alg: none`` and no signature."""
    payload = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(payload, None, algorithm="none")


def tampered(token: str, **changes) -> str:
    """The same signature over changed claims."""
    import base64

    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"
