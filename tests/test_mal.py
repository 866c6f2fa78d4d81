"""MyAnimeList (services/mal.py): check and refresh against its stand-in, and its failures in plain words."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from malcapture.errors import NetworkError, ServiceError
from malcapture.login.contract import Credentials, Setup
from malcapture.services.mal import MalClient
from malcapture.standins.base import Scripted
from tests.helpers import MalStandIn, free_port, run_cli, run_here, stored


async def test_check_names_the_user_and_the_expiry(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    result = await run_cli("check", "-c", str(config), env=mal.env())
    assert result.code == 0, result.err
    assert "kometa_fan" in result.out
    assert "expires" in result.out
    assert "(in 30 days)" in result.out


async def test_check_on_an_expired_token_advises_refresh(mal: MalStandIn, config: Path) -> None:
    stored(mal, config, lifetime=-60)
    result = await run_here("check", "-c", str(config), env=mal.env())
    assert result.code == 1
    assert "HTTP 401" in result.err
    assert "invalid_token" in result.err
    assert "malcapture refresh" in result.err
    assert "expired" in result.err


async def test_check_without_tokens_says_run_malcapture(mal: MalStandIn, config: Path) -> None:
    result = await run_here("check", "-c", str(config), env=mal.env())
    assert result.code == 3  # a config without tokens is a config problem, not MyAnimeList's
    assert "Run `malcapture`" in result.err


async def test_check_offline_still_tells_the_expiry(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    env = mal.env(MALCAPTURE_API_URL=f"http://127.0.0.1:{free_port()}/v2")
    result = await run_here("check", "-c", str(config), env=env)
    assert result.code == 1
    assert "expires" in result.err
    assert "Read offline" in result.err
    assert "Could not reach 127.0.0.1" in result.err


async def test_refresh_rotates_saves_and_the_old_token_is_refused(mal: MalStandIn, config: Path) -> None:
    old = stored(mal, config)
    result = await run_cli("refresh", "-c", str(config), env=mal.env())
    assert result.code == 0, result.err
    auth = YAML(typ="safe").load(config.read_text())["mal"]["authorization"]
    assert auth["refresh_token"] != old["refresh_token"]
    assert auth["refresh_token"] in mal.fake.refresh_tokens
    assert old["refresh_token"] not in mal.fake.refresh_tokens
    # The config now holds the old token again: MAL refuses it, and nothing changes.
    stale = config.read_text().replace(str(auth["refresh_token"]), str(old["refresh_token"]))
    config.write_text(stale)
    again = await run_cli("refresh", "-c", str(config), env=mal.env())
    assert again.code == 1
    assert "HTTP 401" in again.err
    assert "Token has been revoked" in again.err
    assert "authorize again" in again.err
    assert config.read_text() == stale


async def test_refresh_with_another_apps_token_says_so_and_changes_nothing(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    other = mal.fake.register(mal.redirect)
    text = config.read_text().replace(mal.app.client_id, other.client_id)
    text = text.replace(str(mal.app.secret), str(other.secret))
    config.write_text(text)
    result = await run_here("refresh", "-c", str(config), env=mal.env())
    assert result.code == 1
    assert "Token is not linked to client" in result.err
    assert "another MAL app" in result.err
    assert config.read_text() == text


async def test_if_expiring_within_both_ways(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)  # 31 days left
    before = config.read_bytes()
    skip = await run_here("refresh", "-c", str(config), "--if-expiring-within", "7d", env=mal.env())
    assert skip.code == 0
    assert "No refresh needed" in skip.err
    assert config.read_bytes() == before
    due = await run_here("refresh", "-c", str(config), "--if-expiring-within", "32d", env=mal.env())
    assert due.code == 0
    assert "Refreshed" in due.err
    assert config.read_bytes() != before
    bad = await run_here("refresh", "-c", str(config), "--if-expiring-within", "soon", env=mal.env())
    assert bad.code == 2
    assert "--if-expiring-within" in bad.err
    assert "'soon' is not a duration such as 7d" in bad.err


def client(mal: MalStandIn, timeout: float = 5.0) -> MalClient:
    env = mal.env(MALCAPTURE_HTTP_TIMEOUT=str(timeout))
    return MalClient(Setup(env, lambda _: None, Credentials(mal.app.client_id, mal.app.secret), backoff=0.01))


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (
            400,
            '{"error":"invalid_grant","message":"m","hint":"Failed to verify `code_verifier`."}',
            "run malcapture again",
        ),
        (
            400,
            '{"error":"invalid_request","message":"m","hint":"Authorization code has expired"}',
            "run malcapture again",
        ),
        (400, '{"error":"invalid_request","message":"m","hint":"Invalid redirect URI"}', "register it"),
        (401, '{"error":"invalid_client","message":"Client authentication failed","hint":""}', "app type is web"),
        (500, "<html><title>Down for maintenance</title></html>", "'Down for maintenance'"),
    ],
)
async def test_mal_errors_are_put_in_plain_words(mal: MalStandIn, status: int, body: str, words: str) -> None:
    kind = "text/html" if body.startswith("<") else "application/json"
    mal.fake.script("/v1/oauth2/token", Scripted(status, body, kind))
    async with client(mal) as mal_client:
        with pytest.raises(ServiceError) as caught:
            await mal_client.exchange_code("c", "v" * 64, None)
    message = str(caught.value)
    assert f"HTTP {status}" in message
    assert words in message
    assert "<html>" not in message


async def test_whoami_retries_5xx_but_the_code_exchange_does_not(mal: MalStandIn) -> None:
    mal.fake.script("/v2/users/@me", Scripted(503, "busy", "text/plain"), Scripted(502, "busy", "text/plain"))
    token = str(mal.fake.issue_tokens(mal.app.client_id)["access_token"])
    async with client(mal) as mal_client:
        assert (await mal_client.verify({"access_token": token})).name == "kometa_fan"
    assert mal.fake.hits["/v2/users/@me"] == 3
    mal.fake.script("/v1/oauth2/token", Scripted(503, "busy", "text/plain"))
    async with client(mal) as mal_client:
        with pytest.raises(ServiceError, match="HTTP 503"):
            await mal_client.exchange_code("c", "v" * 64, None)
    assert mal.fake.hits["/v1/oauth2/token"] == 1


async def test_a_slow_answer_past_the_timeout_is_reported(mal: MalStandIn) -> None:
    mal.fake.script("/v1/oauth2/token", Scripted(200, "{}", delay=0.6))  # twice the client's patience
    async with client(mal, timeout=0.3) as mal_client:
        with pytest.raises(NetworkError, match="did not answer in time"):
            await mal_client.exchange_code("c", "v" * 64, None)
    await asyncio.sleep(0)


async def test_a_refused_connection_names_the_host_and_is_not_asked_again() -> None:
    port = free_port()
    log: list[str] = []
    env = {"MALCAPTURE_OAUTH_URL": f"http://127.0.0.1:{port}", "MALCAPTURE_API_URL": f"http://127.0.0.1:{port}"}
    async with MalClient(Setup(env, log.append)) as mal_client:
        with pytest.raises(NetworkError, match=f"Could not reach 127.0.0.1:{port}.*connection failed"):
            await mal_client.verify({"access_token": "x"})
    assert [line for line in log if line.startswith("GET ")] == [f"GET http://127.0.0.1:{port}/users/@me"]
