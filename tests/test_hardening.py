"""The loopback server under hostile requests, secrets that never leak, and fuzzed inputs."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from malcapture.errors import InputRejected, MalcaptureError, UsageError
from malcapture.login.pages import success
from malcapture.login.ports import claim
from malcapture.login.redirect import Authorized, Callback, parse_paste, parse_redirect_uri, query_params, read_callback
from malcapture.login.server import CallbackServer
from tests.helpers import MAL, MalStandIn, free_port, port_is_free, run_cli

STATE = "s" * 43
APPS = "https://myanimelist.net/apiconfig"


@pytest.fixture
async def server() -> AsyncIterator[tuple[CallbackServer[Callback], str]]:
    port = free_port()
    target = parse_redirect_uri(f"http://localhost:{port}/callback", APPS)
    rejected: list[str] = []
    callback = CallbackServer(claim(target), target, lambda query: read_callback(query, STATE), rejected.append)
    await callback.start()
    yield callback, f"http://127.0.0.1:{port}"
    await callback.close()
    assert port_is_free(port)


async def test_200_stray_requests_are_answered_and_the_redirect_still_succeeds(
    server: tuple[CallbackServer[Callback], str],
) -> None:
    callback, base = server
    async with aiohttp.ClientSession() as session:

        async def stray(i: int) -> int:
            async with session.get(f"{base}/probe{i}", headers={"Host": f"localhost:{base.rsplit(':', 1)[1]}"}) as r:
                return r.status

        statuses = await asyncio.gather(*(stray(i) for i in range(200)))
        assert statuses == [404] * 200
        assert not callback.result.done()
        pending = asyncio.ensure_future(session.get(f"{base}/callback?code=abc&state={STATE}"))
        assert await asyncio.wait_for(asyncio.shield(callback.result), 5) == Authorized("abc")
        callback.finish(success("kometa_fan", "/x/config.yml", MAL))
        async with await pending as response:
            assert response.status == 200
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert response.headers["Cache-Control"] == "no-store"
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            page = await response.text()
            assert "<script" not in page
            assert "http" not in page.split("<body>")[1].replace("/x/config.yml", "")


async def test_wrong_state_and_foreign_host_get_400_and_the_wait_goes_on(
    server: tuple[CallbackServer[Callback], str],
) -> None:
    callback, base = server
    async with aiohttp.ClientSession() as session:
        for url, headers in (
            (f"{base}/callback?code=abc&state=nope", {}),
            (f"{base}/callback?code=abc", {}),
            (f"{base}/callback?code=abc&state={STATE}", {"Host": "evil.example:80"}),
        ):
            async with session.get(url, headers=headers) as response:
                assert response.status == 400
        assert not callback.result.done()


async def test_echoed_values_are_escaped(server: tuple[CallbackServer[Callback], str]) -> None:
    callback, base = server
    async with aiohttp.ClientSession() as session:
        pending = asyncio.ensure_future(
            session.get(
                f"{base}/callback", params={"state": STATE, "error": "<script>x</script>", "message": "<img src=x>"}
            )
        )
        result = await asyncio.wait_for(asyncio.shield(callback.result), 5)
        from malcapture.login.capture import refusal as refusal_of
        from malcapture.login.pages import failure

        refusal = refusal_of(result, MAL)  # type: ignore[arg-type]
        callback.finish(failure(refusal.what, refusal.advice))
        async with await pending as response:
            page = await response.text()
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;script&gt;" in page


def test_only_loopback_is_bound() -> None:
    port = free_port()
    sockets = claim(parse_redirect_uri(f"http://localhost:{port}/", APPS))
    try:
        addresses = sorted(s.getsockname()[0] for s in sockets)
        assert addresses == ["127.0.0.1", "::1"] or addresses == ["127.0.0.1"]
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=False)
        if listening.returncode == 0:
            local = sorted(line.split()[3].rsplit(":", 1)[0] for line in listening.stdout.splitlines())
            assert local in (["127.0.0.1", "[::1]"], ["127.0.0.1"])
    finally:
        for sock in sockets:
            sock.close()


async def test_no_token_or_secret_appears_in_any_output(
    mal: MalStandIn, config: Path, scripted_browser: Callable[..., Path]
) -> None:
    env = mal.env(BROWSER=str(scripted_browser()), DISPLAY=":99")
    common = ["-c", str(config), "--client-id", mal.app.client_id, "--client-secret", str(mal.app.secret), "-v"]
    outputs = [await run_cli("login", *common, "--redirect-uri", mal.redirect, env=env)]
    outputs.append(await run_cli("refresh", *common, env=env))
    outputs.append(await run_cli("check", *common, env=env))
    assert [r.code for r in outputs] == [0, 0, 0], outputs[-1].err
    assert "[http] POST" in outputs[0].err
    secrets = [str(mal.app.secret), *mal.fake.access_tokens, *mal.fake.refresh_tokens, *mal.fake.grants]
    text = "".join(r.out + r.err for r in outputs)
    for secret in secrets:
        for start in range(6, len(secret) - 20, 37):
            assert secret[start : start + 20] not in text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_fuzzed_pastes_raise_only_our_errors_and_never_accept_a_wrong_state(text: str) -> None:
    try:
        result = parse_paste(text, STATE)
    except InputRejected:
        return
    if "state=" in text:
        params = query_params(text.split("?", 1)[-1].split("#", 1)[0])
        assert params.get("state", STATE) == STATE
    assert not isinstance(result, Authorized) or result.code  # an accepted paste always carries a code


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["code", "state", "error", "message", "x"]), st.text(), max_size=5))
def test_fuzzed_callbacks_never_accept_a_wrong_state(params: dict[str, str]) -> None:
    try:
        read_callback(params, STATE)
    except InputRejected:
        assert params.get("state") != STATE or not (params.get("code") or "error" in params)
        return
    assert params["state"] == STATE


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.builds(lambda h, p: f"http://{h}{p}", st.text(max_size=20), st.text(max_size=20))))
def test_fuzzed_redirect_uris_raise_only_usage_errors(uri: str) -> None:
    try:
        target = parse_redirect_uri(uri, APPS)
    except UsageError:
        return
    except MalcaptureError as exc:  # pragma: no cover
        pytest.fail(f"unexpected error class {type(exc)}")
    assert target.uri == uri
    assert target.host
    assert 0 <= target.port < 65536
