"""MyAnimeList: the loopback login with PKCE, its token endpoint and users/@me, its failures in plain words.

Facts: ../shared/MAL-OAUTH.md. Its answers match the PHP league/oauth2-server library, which
checks the client before the grant: a token request with a code that cannot exist tells a wrong
secret (401 invalid_client) from a right one (400 invalid_request) and spends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from malcapture.answers import is_html, issued, json_object, titled
from malcapture.errors import ServiceError
from malcapture.http import Answer, HttpClient
from malcapture.login import loopback
from malcapture.login.contract import Account, ServiceCode, Setup, http_timeout, urls
from malcapture.services import MYANIMELIST as SERVICE
from malcapture.tokens import TokenSet

URLS = (
    ("MALCAPTURE_OAUTH_URL", "https://myanimelist.net/v1/oauth2"),  # {base}/authorize, {base}/token
    ("MALCAPTURE_API_URL", "https://api.myanimelist.net/v2"),  # {base}/users/@me
)
TOKEN_KEYS = ("access_token", "token_type", "expires_in", "refresh_token")  # Kometa's order (modules/mal.py)
RUN_AGAIN = "Codes work once and only for minutes: run malcapture again."
AUTHORIZE_AGAIN = (
    "The refresh token no longer works (each one works once, and they expire after about a month): "
    "run `malcapture` to authorize again."
)
CHECK_APP = (
    "Check the client ID and secret at https://myanimelist.net/apiconfig, "
    "and that the app type is web (only web apps get a secret)."
)


def authorize_url(env: Mapping[str, str], client_id: str, verifier: str, state: str, redirect_uri: str | None) -> str:
    """PKCE with `plain`, the only method MyAnimeList supports; `redirect_uri` only when the user chose one."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "code_challenge": verifier,
        "code_challenge_method": "plain",
        "state": state,
    }
    if redirect_uri is not None:
        params["redirect_uri"] = redirect_uri
    return f"{urls(env, *URLS)[0]}/authorize?{urlencode(params)}"


class MalClient(HttpClient):
    """MyAnimeList's token endpoint and users/@me."""

    def __init__(self, setup: Setup) -> None:
        super().__init__(http_timeout(setup.env), setup.log, backoff=setup.backoff, sleep=setup.sleep)
        self.oauth, self.api = urls(setup.env, *URLS)
        self.creds = setup.creds

    @property
    def warm_urls(self) -> tuple[str, ...]:
        """The connections the code exchange and the account check will use."""
        return (f"{self.oauth}/token", f"{self.api}/users/@me")

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str | None) -> TokenSet:
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier}
        if redirect_uri is not None:
            form["redirect_uri"] = redirect_uri
        return await self._token(form, "code exchange")

    async def refresh(self, refresh_token: str) -> TokenSet:
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token}, "refresh")

    async def check_secret(self) -> None:
        """A code that cannot exist: MyAnimeList checks the client first, so a wrong secret is its answer."""
        import secrets

        if self.creds is None or not self.creds.client_secret:
            return
        form = {
            "grant_type": "authorization_code",
            "code": f"malcapture-{secrets.token_hex(8)}",
            "code_verifier": "v" * 43,
        }
        try:
            answer = await self._post(form, "check of the client secret")
        except ServiceError as exc:
            self._log(f"the client secret could not be checked: {exc.what}")
            return
        failure = explain_failure(answer, "check of the client secret")
        if answer.status == 401 and "invalid_client" in failure.what:
            raise wrong_secret(failure)

    async def verify(self, tokens: Mapping[str, object]) -> Account:
        url = f"{self.api}/users/@me"
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        answer = await self.send("GET", url, "account check", idempotent=True, headers=headers)
        if answer.status != 200:
            raise explain_failure(answer, "account check")
        data = json_object(answer, SERVICE.title, "account check")
        mismatch = client_mismatch(str(tokens["access_token"]), self.creds.client_id if self.creds else None)
        return Account(str(data.get("name") or f"user {data.get('id', '?')}"), (mismatch,) if mismatch else ())

    async def _token(self, form: dict[str, str], action: str) -> TokenSet:
        answer = await self._post(form, action)
        if answer.status != 200:
            raise explain_failure(answer, action)
        return issued(answer, SERVICE.title, action, "malcapture", read_tokens)

    async def _post(self, form: dict[str, str], action: str) -> Answer:
        assert self.creds is not None, "token requests need the app's client ID"
        form = {"client_id": self.creds.client_id, **form}
        if self.creds.client_secret:
            form["client_secret"] = self.creds.client_secret
        return await self.send("POST", f"{self.oauth}/token", action, idempotent=False, data=form)


def read_tokens(data: Mapping[str, Any]) -> TokenSet:
    return TokenSet(
        {
            "access_token": data["access_token"],
            "token_type": str(data.get("token_type") or "Bearer"),
            "expires_in": int(data["expires_in"]),
            "refresh_token": data["refresh_token"],
        }
    )


def wrong_secret(failure: ServiceError) -> ServiceError:
    return ServiceError(
        f"{failure.what} — the client secret (or the client ID) is wrong, so MyAnimeList would refuse every "
        "code exchange and refresh with it.",
        CHECK_APP,
        failure.status,
    )


def explain_failure(answer: Answer, action: str) -> ServiceError:
    import json

    status, body = answer.status, answer.body
    try:
        data = json.loads(body) if "json" in answer.kind or body.lstrip().startswith("{") else None
    except ValueError:
        data = None
    if isinstance(data, dict) and "error" in data:
        error, message, hint = (str(data.get(k) or "") for k in ("error", "message", "hint"))
        said = " ".join(part if part.endswith((".", "!", "?")) else f"{part}." for part in (message, hint) if part)
        return ServiceError(
            f"MyAnimeList refused the {action}: HTTP {status} {error}" + (f" — {said}" if said else ""),
            _advice(status, error, f"{message} {hint}".lower(), action),
            status,
        )
    if is_html(answer):
        return ServiceError(
            f"MyAnimeList answered the {action} with HTTP {status} and a web page{titled(body)} instead of JSON.",
            "MyAnimeList may be down for maintenance or blocking this network: try again later.",
            status,
        )
    return ServiceError(
        f"MyAnimeList answered the {action} with HTTP {status} ({answer.kind or 'no content type'}).",
        "Try again later." if status >= 500 else "Run with -v to see the exchange.",
        status,
    )


def _advice(status: int, error: str, words: str, action: str) -> str:
    if error == "invalid_client":
        return CHECK_APP
    if "redirect" in words:
        return (
            "The redirect URL must match one registered in your MAL app exactly (scheme, host, port, "
            "path, trailing slash): register it, or pass the registered one with --redirect-uri."
        )
    if error == "invalid_token":
        return "The access token was refused: run `malcapture refresh` (or `malcapture` to authorize again)."
    if "not linked to client" in words:
        return (
            "The refresh token was issued to another MAL app than this client ID: put back the client ID "
            "it was issued to, or run `malcapture` to authorize again."
        )
    if action == "refresh" and "token" in words:
        return AUTHORIZE_AGAIN
    if any(w in words for w in ("expired", "revoked", "code_verifier", "not issued", "authorization code")):
        return RUN_AGAIN
    if status >= 500:
        return "MyAnimeList had a problem of its own: try again in a few minutes."
    return "Run again with -v to see the exchange; if it persists, run `malcapture` to authorize again."


def jwt_claims(access_token: str) -> dict[str, Any]:
    """The payload of MAL's RS256 access token (`aud`, `sub`, `exp`…), read without checking the signature.

    The signature is MyAnimeList's business; we only want to tell the user whose token it is and
    when it runs out. Not a JWT: no claims.
    """
    import base64
    import json

    parts = access_token.split(".")
    if len(parts) != 3:
        return {}
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def expiry(values: Mapping[str, object]) -> datetime | None:
    """The `exp` claim of the access token; one past the year 9999 is the latest date there is."""
    try:
        exp = int(jwt_claims(str(values.get("access_token") or ""))["exp"])
    except (ValueError, KeyError, TypeError):
        return None
    try:
        return datetime.fromtimestamp(exp, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=timezone.utc) if exp > 0 else None


def owner(access_token: str) -> str | None:
    user = jwt_claims(access_token).get("sub")
    return f"user ID {user}" if user else None


def client_mismatch(access_token: str, client_id: str | None) -> str | None:
    """MAL's access token names the app it was issued to (`aud`): another one breaks the next refresh."""
    audience = jwt_claims(access_token).get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id and audience and client_id not in audiences:
        return (
            f"the stored token was issued to the MAL app {audiences[0]}, not to the client ID {client_id}: the next "
            'refresh will fail ("Token is not linked to client"). Put back that app\'s client ID and secret, '
            "or run `malcapture` to authorize with this one."
        )
    return None


def stand_in() -> TokenSet:
    """A ~1,000-character RS256 JWT and a def50200… refresh token, as MyAnimeList issues them."""
    import base64
    import json

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"aud": "0" * 32, "jti": "0" * 80, "iat": 0, "nbf": 0, "exp": 0, "sub": "0", "scopes": []}
    jwt = f"{part({'typ': 'JWT', 'alg': 'RS256', 'jti': '0' * 80})}.{part(claims)}.{'A' * 683}"
    return TokenSet(
        {"access_token": jwt, "token_type": "Bearer", "expires_in": 2678400, "refresh_token": "def50200" + "0" * 1000}
    )


sample = """\
mal:
  client_id:                       # Enter MyAnimeList Client ID
  client_secret:                   # Enter MyAnimeList Client Secret
  localhost_url: http://localhost/?code=stale-code-from-an-earlier-try
  authorization:
    # authorization section is autofilled by the script
    access_token:
    token_type:
    expires_in:
    refresh_token:
"""


CODE = ServiceCode(
    sample=sample,
    client=MalClient,
    expiry=expiry,
    owner=owner,
    authorize_url=authorize_url,
    login=loopback.run,  # the loopback capture, its paste fallback with it
    login_async=loopback.login,
    stand_in=stand_in,
)
