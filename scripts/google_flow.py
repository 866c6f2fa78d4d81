"""The yardstick: google-auth-oauthlib's loopback flow (InstalledAppFlow.run_local_server) against the stand-in.

Set up as anyone would for MyAnimeList: its endpoints, the client's ID and secret, and plain PKCE,
the only kind MAL accepts. OAUTHLIB_INSECURE_TRANSPORT must be set, as the stand-in speaks http.
Usage: google_flow.py OAUTH_BASE CLIENT_ID CLIENT_SECRET PORT
"""

from __future__ import annotations

import secrets
import sys

from google_auth_oauthlib.flow import InstalledAppFlow


def main(oauth: str, client_id: str, secret: str, port: int) -> None:
    verifier = secrets.token_urlsafe(96)[:128]
    client = {
        "installed": {
            "client_id": client_id,
            "client_secret": secret,
            "auth_uri": f"{oauth}/authorize",
            "token_uri": f"{oauth}/token",
        }
    }
    flow = InstalledAppFlow.from_client_config(
        client, scopes=None, code_verifier=verifier, autogenerate_code_verifier=False
    )
    flow.run_local_server(
        host="localhost",
        port=port,
        timeout_seconds=60,
        code_challenge=verifier,
        code_challenge_method="plain",
    )
    if not flow.credentials.token:
        raise SystemExit("no access token")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
