"""The services Kometa needs malcapture for: one Service value each, read as data by the rest of malcapture.

Each value names the module with its code (services/mal.py, spotify.py, trakt/, plex/), whose CODE is
imported when a command needs it: reading this table costs nothing at start-up.
"""

from __future__ import annotations

from malcapture.login.contract import App, Service
from malcapture.login.ways import DEVICE, FORWARD, LINK, LOOPBACK, PASTE, PIN, Redirect

MYANIMELIST = Service(
    name="mal",
    title="MyAnimeList",
    group=None,
    summary="Authorize Kometa on MyAnimeList",
    token_keys=("access_token", "token_type", "expires_in", "refresh_token"),  # Kometa's order (modules/mal.py)
    tokens_under="authorization",
    spent="localhost_url",
    app=App(
        env=("MAL_CLIENT_ID", "MAL_CLIENT_SECRET"),
        id_length=32,
        apps="https://myanimelist.net/apiconfig",
        lone_id="no client secret. Only apps of type *web* have one, and Kometa needs it: "
        "MyAnimeList will refuse the exchange if the app is of type web.",
        wrong_id=" A wrong client ID (or redirect URL) shows up as a password popup on MyAnimeList that keeps "
        "coming back.",
    ),
    ways=(LOOPBACK, PASTE),
    redirect=Redirect(
        "The redirect URL registered in the MAL app [default: http://localhost/, not sent to MAL]",
        default="http://localhost/",
        env="MALCAPTURE_REDIRECT_URI",
    ),
    login_help="Authorize Kometa on MyAnimeList and save the tokens into its config.",
    done="Authorized",
    module="malcapture.services.mal",
    spent_url=True,
)

TRAKT = Service(
    name="trakt",
    title="Trakt",
    group="trakt",
    summary="Authorize Kometa on Trakt",
    token_keys=("access_token", "token_type", "expires_in", "refresh_token", "scope", "created_at"),  # Kometa's
    tokens_under="authorization",
    spent="pin",
    app=App(
        env=("TRAKT_CLIENT_ID", "TRAKT_CLIENT_SECRET"),
        id_length=64,
        apps="https://developer.trakt.tv (Your API Apps)",
        lone_id="no client secret: Trakt needs the app's secret for every token request (developer.trakt.tv).",
    ),
    ways=(DEVICE, PIN.choosing("Kometa's PIN flow: type the PIN Trakt shows (trakt.pin is used first)."), LOOPBACK),
    redirect=Redirect(
        "Catch the redirect to this loopback URL registered in the Trakt app (e.g. http://localhost:8765/)."
    ),
    login_help="Authorize Kometa on Trakt: the device flow by default (no redirect URL, port or paste).",
    done="Authorized",
    module="malcapture.services.trakt",
)

PLEX = Service(
    name="plex",
    title="Plex",
    group="plex",
    summary="Sign Kometa in to Plex",
    token_keys=("token",),
    tokens_under=None,
    spent=None,
    app=None,
    ways=(
        FORWARD,
        LINK.choosing(
            "Sign in with a 4-character code at plex.tv/link, on any device (the default without a browser here)."
        ),
    ),
    login_help="Sign Kometa in to Plex as its own device, check the token against plex.tv and your server, save it.",
    done="Signed in",
    module="malcapture.services.plex",
    access_key="token",
    refresh_key=None,
    needs=("url", "verify_ssl"),
)

SPOTIFY = Service(
    name="spotify",
    title="Spotify",
    group="spotify",
    summary="Authorize Kometa on Spotify",
    token_keys=("access_token", "token_type", "expires_in", "refresh_token", "scope", "expires_at"),  # Kometa's
    tokens_under="authorization",
    spent=None,
    app=App(
        env=("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET"),
        id_length=32,
        apps="https://developer.spotify.com/dashboard",
        lone_id="no client secret: Kometa sends the app's secret with every token request (the app's Settings at "
        "https://developer.spotify.com/dashboard show it).",
    ),
    ways=(LOOPBACK, PASTE),
    redirect=Redirect(
        "The redirect URI registered in the Spotify app, e.g. http://127.0.0.1:8888/callback "
        "[default: spotify.redirect_uri of the config, which a blank one is filled with]",
        setting="redirect_uri",
        hosts=("127.0.0.1",),
        env="MALCAPTURE_SPOTIFY_REDIRECT_URI",
        refuse="Spotify refuses `localhost`, and Kometa takes only http://127.0.0.1 for a local redirect (not [::1]).",
        https=True,
    ),
    login_help="Authorize Kometa on Spotify (its five scopes) and save the tokens into its config.",
    done="Authorized",
    module="malcapture.services.spotify",
)

SERVICES: tuple[Service, ...] = (MYANIMELIST, TRAKT, PLEX, SPOTIFY)
DEFAULT = next(service for service in SERVICES if service.group is None)  # what a bare `malcapture` logs in to


def by_name(name: str) -> Service:
    return next(service for service in SERVICES if service.name == name)
