"""The whole login, as a user runs it: CLI subprocess, fake MAL and callback server on real sockets."""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from ruamel.yaml import YAML

from malcapture import __version__
from malcapture.login.contract import LoginOptions
from malcapture.standins.base import play_browser
from tests.helpers import MAL, MalStandIn, port_is_free, quiet_io, read_record, run_cli, run_here


def saved_mal(path: Path) -> dict[str, object]:
    data = YAML(typ="safe").load(path.read_text("utf-8"))
    mal: dict[str, object] = data["mal"]
    return mal


async def test_login_saves_the_tokens_mal_issued(
    mal: MalStandIn, config: Path, scripted_browser: Callable[..., Path]
) -> None:
    browser = scripted_browser("allow")
    env = mal.env(BROWSER=str(browser), DISPLAY=":99")
    result = await run_cli(
        "login",
        *mal.args(config),
        "--timeout",
        "30",
        env=env,
    )
    assert result.code == 0, result.err
    assert "Authorized as kometa_fan" in result.err
    assert result.out == ""
    saved = saved_mal(config)
    auth = saved["authorization"]
    assert isinstance(auth, dict)
    assert list(auth) == ["access_token", "token_type", "expires_in", "refresh_token"]
    assert auth["access_token"] in mal.fake.access_tokens
    assert auth["refresh_token"] in mal.fake.refresh_tokens
    assert auth["token_type"] == "Bearer"
    assert auth["expires_in"] == 2678400
    assert saved["client_id"] == mal.app.client_id
    assert "libraries:\n  Anime:\n    collection_files:\n      - default: basic\n" in config.read_text()
    page = read_record(config.parent / "browser.json")
    assert page["status"] == 200
    assert "Authorized as <b>kometa_fan</b>" in str(page["page"])
    assert str(config) in str(page["page"])
    assert port_is_free(mal.port)


async def test_the_authorize_url_is_printed_whole_on_its_own_line(
    mal: MalStandIn, config: Path, scripted_browser: Callable[..., Path]
) -> None:
    env = mal.env(BROWSER=str(scripted_browser()), DISPLAY=":99")
    result = await run_cli(
        *mal.args(config),
        env=env,
    )
    assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if line.startswith(f"{mal.base}/v1/oauth2/authorize?")]
    assert len(lines) == 1
    query = parse_qs(urlsplit(lines[0]).query)
    assert query["code_challenge_method"] == ["plain"]
    verifier = query["code_challenge"][0]
    assert len(verifier) == 128
    assert set(verifier) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(base64.urlsafe_b64decode(query["state"][0] + "==")) >= 16
    assert query["redirect_uri"] == [mal.redirect]
    assert mal.fake.last_token_form["redirect_uri"] == mal.redirect


async def test_default_redirect_is_sent_in_neither_request(mal: MalStandIn, config: Path, no_input: int) -> None:
    """Kometa's docs register http://localhost/ (port 80); MAL then uses the registered URL."""
    try:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as malcapture binds: TIME_WAIT is no owner
            probe.bind(("127.0.0.1", 80))
    except PermissionError:
        pytest.skip("binding port 80 needs privileges this user does not have")
    if not port_is_free(80):
        pytest.skip("port 80 is taken on this machine")
    app = mal.fake.register("http://localhost/")
    seen: list[str] = []

    def browser(url: str) -> bool:
        import asyncio

        seen.append(url)
        status, _ = asyncio.run(play_browser(url))
        return status == 200

    opts = LoginOptions(config, MAL, app.client_id, app.secret, timeout=30)
    io_, _ = quiet_io(mal.env(), no_input, open_browser=browser, headless=lambda env: None)
    result = await MAL.code.login_async(opts, io_)
    assert result.account is not None
    assert result.account.name == "kometa_fan"
    assert "redirect_uri" not in parse_qs(urlsplit(seen[0]).query)
    assert "redirect_uri" not in mal.fake.last_token_form
    assert port_is_free(80)


async def test_print_emits_the_block_and_leaves_the_file_alone(
    mal: MalStandIn, config: Path, scripted_browser: Callable[..., Path]
) -> None:
    before = config.read_bytes()
    env = mal.env(BROWSER=str(scripted_browser()), DISPLAY=":99")
    result = await run_cli(
        "login",
        "--print",
        *mal.args(config),
        env=env,
    )
    assert result.code == 0, result.err
    assert config.read_bytes() == before
    block = YAML(typ="safe").load(result.out)["mal"]
    assert block["authorization"]["access_token"] in mal.fake.access_tokens
    assert block["client_id"] == mal.app.client_id
    assert list(block) == ["client_id", "client_secret", "authorization"]  # the section as it would be saved


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("https://localhost/", "must start with http://"),
        ("http:///callback", "no host"),
        ("http://localhost/#frag", "fragment"),
        ("localhost:8765", "must start with http://"),
        ("http://localhost:99999/", "not a valid URL"),
    ],
)
async def test_malformed_redirect_uri_exits_2_with_the_reason(
    mal: MalStandIn, config: Path, uri: str, words: str
) -> None:
    before = config.read_bytes()
    result = await run_cli(
        "login", "-c", str(config), "--client-id", mal.app.client_id, "--redirect-uri", uri, env=mal.env()
    )
    assert result.code == 2
    assert words in result.err
    assert "Traceback" not in result.err
    assert config.read_bytes() == before


async def test_no_client_id_and_no_terminal_exits_2_saying_where_to_put_it(mal: MalStandIn, config: Path) -> None:
    result = await run_cli("login", "-c", str(config), "--manual", env=mal.env())
    assert result.code == 2
    assert "No MyAnimeList client ID" in result.err
    assert "--client-id" in result.err
    assert "MAL_CLIENT_ID" in result.err
    assert "mal.client_id" in result.err


async def test_a_bad_option_value_exits_2(mal: MalStandIn, config: Path) -> None:
    result = await run_here("login", "-c", str(config), "--timeout", "soon", env=mal.env())
    assert result.code == 2
    assert "--timeout" in result.err


async def test_version_and_python_m() -> None:
    result = await run_cli("--version", env={})
    assert result.code == 0
    assert result.out == f"malcapture {__version__}\n"


# The fake refuses what MyAnimeList refuses.


async def authorize(session: aiohttp.ClientSession, mal: MalStandIn, **params: str) -> aiohttp.ClientResponse:
    query = {"response_type": "code", "client_id": mal.app.client_id, "code_challenge": "v" * 64, **params}
    return await session.get(f"{mal.base}/v1/oauth2/authorize", params=query, allow_redirects=False)


async def a_code(session: aiohttp.ClientSession, mal: MalStandIn, **params: str) -> str:
    mal.fake.consent = "allow"
    response = await authorize(session, mal, state="s", **params)
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


async def exchange(session: aiohttp.ClientSession, mal: MalStandIn, **form: str) -> tuple[int, dict[str, str]]:
    data = {
        "client_id": mal.app.client_id,
        "client_secret": str(mal.app.secret),
        "grant_type": "authorization_code",
        **form,
    }
    async with session.post(f"{mal.base}/v1/oauth2/token", data=data) as response:
        return response.status, await response.json()


async def test_fake_refuses_a_redirect_url_not_registered_exactly(mal: MalStandIn) -> None:
    async with aiohttp.ClientSession() as session:
        for wrong in (mal.redirect.rstrip("/"), mal.redirect.replace("localhost", "127.0.0.1")):
            response = await authorize(session, mal, redirect_uri=wrong)
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Basic")
            assert (await response.json())["error"] == "invalid_client"


async def test_fake_refuses_s256(mal: MalStandIn) -> None:
    async with aiohttp.ClientSession() as session:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(b"x" * 64).digest()).rstrip(b"=").decode()
        response = await authorize(session, mal, code_challenge=challenge, code_challenge_method="S256")
        assert response.status == 400


async def test_fake_refuses_a_second_use_of_a_code_and_a_wrong_verifier(mal: MalStandIn) -> None:
    async with aiohttp.ClientSession() as session:
        code = await a_code(session, mal)
        assert len(code) > 1000
        status, body = await exchange(session, mal, code=code, code_verifier="w" * 64)
        assert (status, body["error"], body["hint"]) == (400, "invalid_grant", "Failed to verify `code_verifier`.")
        status, body = await exchange(session, mal, code=code)
        assert (status, body["hint"]) == (400, "Check the `code_verifier` parameter")
        status, body = await exchange(session, mal, code=code, code_verifier="v" * 64)
        assert status == 200
        assert body["refresh_token"].startswith("def50200")
        status, body = await exchange(session, mal, code=code, code_verifier="v" * 64)
        assert (status, body["hint"]) == (400, "Authorization code has been revoked")


async def test_fake_takes_client_credentials_by_http_basic_too(mal: MalStandIn) -> None:
    async with aiohttp.ClientSession() as session:
        form = {"grant_type": "authorization_code", "code_verifier": "v" * 64}
        for secret, status in ((f"{mal.app.secret}x", 401), (str(mal.app.secret), 200)):
            basic = base64.b64encode(f"{mal.app.client_id}:{secret}".encode()).decode()
            data = {**form, "code": await a_code(session, mal)}
            headers = {"Authorization": f"Basic {basic}"}
            async with session.post(f"{mal.base}/v1/oauth2/token", data=data, headers=headers) as response:
                assert response.status == status


async def test_fake_refuses_a_code_issued_to_another_client(mal: MalStandIn) -> None:
    other = mal.fake.register(mal.redirect)
    async with aiohttp.ClientSession() as session:
        code = await a_code(session, mal)
        status, body = await exchange(
            session, mal, code=code, code_verifier="v" * 64, client_id=other.client_id, client_secret=str(other.secret)
        )
        assert (status, body["hint"]) == (400, "Authorization code was not issued to this client")


async def test_fake_refuses_a_missing_client_secret(mal: MalStandIn) -> None:
    async with aiohttp.ClientSession() as session:
        code = await a_code(session, mal)
        data = {
            "client_id": mal.app.client_id,
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": "v" * 64,
        }
        async with session.post(f"{mal.base}/v1/oauth2/token", data=data) as response:
            assert response.status == 401
            assert (await response.json())["error"] == "invalid_client"


async def test_fake_refuses_a_redirect_uri_that_differs_from_the_authorize_request(mal: MalStandIn) -> None:
    async with aiohttp.ClientSession() as session:
        code = await a_code(session, mal, redirect_uri=mal.redirect)
        status, body = await exchange(session, mal, code=code, code_verifier="v" * 64)
        assert (status, body["hint"]) == (400, "Invalid redirect URI")


async def test_a_bad_http_timeout_setting_is_a_usage_error(mal: MalStandIn, config: Path) -> None:
    result = await run_cli(*mal.args(config, "--manual"), env=mal.env(MALCAPTURE_HTTP_TIMEOUT="soon"))
    assert result.code == 2
    assert "MALCAPTURE_HTTP_TIMEOUT" in result.err
    assert "Traceback" not in result.err
