"""Under attack and under failure: no issued token lost, no secret sent where it should not go, no hang,
no traceback. (The lock's planted symlink and hard links are in test_concurrency.py; the closed
terminal and the line editor's keys in test_terminal.py.)"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from ruamel.yaml import YAML

from malcapture.errors import ServiceError, TimedOut
from malcapture.login.contract import Account, Credentials, LoginOptions, Setup
from malcapture.login.guard import Guard
from malcapture.login.pages import success
from malcapture.login.ports import claim
from malcapture.login.redirect import Authorized, Callback, parse_redirect_uri, read_callback
from malcapture.login.server import CallbackServer
from malcapture.services.mal import MalClient
from malcapture.standins.base import Scripted, play_browser, serve_app
from tests.helpers import (
    MAL,
    PLEX,
    TRAKT,
    FakeClock,
    MalStandIn,
    TraktStandIn,
    browser_clicking_allow,
    fill,
    first_hit,
    free_port,
    needs_root,
    quiet_io,
    run_cli,
    run_here,
    spawn_cli,
    stored,
    stored_trakt,
)

STATE = "s" * 43
EMPTY_TRAKT = "trakt:\n  client_id:\n  client_secret:\n  pin:\n"


# 3. A full disk during a refresh: the new tokens are printed first, then a file is tried.
async def test_a_full_disk_during_a_refresh_prints_the_new_tokens_first(mal: MalStandIn, tmpfs: Path) -> None:
    config = tmpfs / "config.yml"
    old = stored(mal, config)
    before = config.read_bytes()
    fill(tmpfs)
    result = await run_cli("refresh", "-c", str(config), env=mal.env(HOME=str(tmpfs)))
    assert result.code == 3, result.err
    assert "Traceback" not in result.err
    new = YAML(typ="safe").load(result.out)["mal"]["authorization"]["refresh_token"]
    assert new in mal.fake.refresh_tokens  # the live refresh token is the one on stdout
    assert old["refresh_token"] not in mal.fake.refresh_tokens
    assert config.read_bytes() == before
    assert [p for p in tmpfs.iterdir() if p.name.startswith("malcapture-tokens")] == []  # no empty file left


# 4. The account check fails after the exchange: the tokens are the user's all the same.
async def test_an_account_check_that_fails_after_the_exchange_saves_with_a_warning(
    mal: MalStandIn, config: Path, no_input: int
) -> None:
    mal.fake.script("/v2/users/@me", *[Scripted(503, "busy", "text/plain")] * 3)
    io, said = quiet_io(mal.env(), no_input, open_browser=browser_clicking_allow, headless=lambda env: None)
    opts = LoginOptions(config, MAL, mal.app.client_id, mal.app.secret, redirect_uri=mal.redirect)
    result = await MAL.code.login_async(opts, io)  # its retries wait on the FakeClock: no real backoff
    assert result.saved_to == config.absolute()
    assert mal.fake.hits["/v2/users/@me"] == 3
    assert "the new tokens could not be checked" in said.text
    assert "`malcapture check` later" in said.text
    auth = YAML(typ="safe").load(config.read_text())["mal"]["authorization"]
    assert auth["refresh_token"] in mal.fake.refresh_tokens


async def test_a_device_approval_whose_account_check_fails_is_saved_too(
    trakt: TraktStandIn, tmp_path: Path, no_input: int
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(EMPTY_TRAKT)
    trakt.fake.script("/users/settings", *[Scripted(502, "bad gateway", "text/plain")] * 3)
    trakt.fake.interval = 1
    clock = FakeClock()
    trakt.fake.clock = clock.wall
    io, said = quiet_io(trakt.env(), no_input, clock)
    opts = LoginOptions(config, TRAKT, trakt.app.client_id, trakt.app.secret)
    login = asyncio.ensure_future(TRAKT.code.login_async(opts, io))
    try:
        await asyncio.wait_for(trakt.fake.requested("/oauth/device/token"), 10)
        trakt.fake.decide(next(iter(trakt.fake.devices.values())).user_code)
        result = await asyncio.wait_for(login, 10)
    finally:
        login.cancel()
    assert result.saved_to is not None
    assert "could not be checked" in said.text
    auth = YAML(typ="safe").load(config.read_text())["trakt"]["authorization"]
    assert auth["refresh_token"] in trakt.fake.refresh_tokens


# 5. Placeholder token values on refresh: into .env, or refused before the refresh token is spent.
def placeholder_config(config: Path, mal: MalStandIn) -> dict[str, str | int]:
    tokens = mal.fake.issue_tokens(mal.app.client_id)
    config.write_text(
        f"mal:\n  client_id: {mal.app.client_id}\n  client_secret: {mal.app.secret}\n  authorization:\n"
        "    access_token: <<MAL_ACCESS_TOKEN>>\n    token_type: Bearer\n    expires_in: 2678400\n"
        "    refresh_token: <<mal-refresh-token>>   # from .env\n"
    )
    return tokens


async def test_placeholder_tokens_on_refresh_go_into_dotenv(mal: MalStandIn, config: Path) -> None:
    old = placeholder_config(config, mal)
    dotenv = config.parent / ".env"
    dotenv.write_text(
        f"# Kometa's secrets\nTZ=Europe/Berlin\nKOMETA_MAL_ACCESS_TOKEN={old['access_token']}\n"
        f"export KOMETA_MAL_REFRESH_TOKEN='{old['refresh_token']}'\n"
    )
    dotenv.chmod(0o600)
    before = config.read_bytes()
    result = await run_here("refresh", "-c", str(config), env=mal.env())
    assert result.code == 0, result.err
    assert config.read_bytes() == before  # the placeholders stay
    lines = dotenv.read_text().splitlines()
    assert lines[:2] == ["# Kometa's secrets", "TZ=Europe/Berlin"]
    new = lines[3].removeprefix("export KOMETA_MAL_REFRESH_TOKEN='").removesuffix("'")
    assert new in mal.fake.refresh_tokens  # the new, live one
    assert lines[2].startswith("KOMETA_MAL_ACCESS_TOKEN=")
    assert lines[2] != f"KOMETA_MAL_ACCESS_TOKEN={old['access_token']}"
    assert oct(dotenv.stat().st_mode & 0o777) == "0o600"
    assert f"KOMETA_MAL_REFRESH_TOKEN (mal.authorization.refresh_token) in {dotenv}" in result.err
    again = await run_here("refresh", "-c", str(config), env=mal.env())  # read back from .env, and it works
    assert again.code == 0, again.err


async def test_placeholder_tokens_defined_nowhere_are_refused_before_the_refresh_token_is_spent(
    mal: MalStandIn, config: Path
) -> None:
    old = placeholder_config(config, mal)
    before = config.read_bytes()
    env = mal.env(KOMETA_MAL_ACCESS_TOKEN=str(old["access_token"]), KOMETA_MAL_REFRESH_TOKEN=str(old["refresh_token"]))
    result = await run_here("refresh", "-c", str(config), env=env)  # only in this process's environment
    assert result.code == 3
    assert "KOMETA_MAL_ACCESS_TOKEN" in result.err
    assert "--print" in result.err
    assert mal.fake.hits["/v1/oauth2/token"] == 0
    assert old["refresh_token"] in mal.fake.refresh_tokens
    assert config.read_bytes() == before


# 6. Token requests never follow a redirect: the refresh token and the secret stay where they were sent.
async def test_a_redirect_of_a_token_request_is_refused_and_not_followed(mal: MalStandIn, config: Path) -> None:
    elsewhere: list[str] = []

    async def record(request: web.Request) -> web.Response:
        elsewhere.append(await request.text())
        return web.json_response({"access_token": "x", "refresh_token": "y", "expires_in": 1})

    app = web.Application()
    app.router.add_post("/steal", record)
    runner, attacker = await serve_app(app)
    try:
        old = stored(mal, config)
        before = config.read_bytes()
        mal.fake.script("/v1/oauth2/token", Scripted(307, "", headers={"Location": f"{attacker}/steal"}))
        result = await run_here("refresh", "-c", str(config), env=mal.env())
    finally:
        await runner.cleanup()
    assert result.code == 1
    assert f"redirect (HTTP 307) to {attacker}/steal" in result.err
    assert elsewhere == []
    assert config.read_bytes() == before
    assert old["refresh_token"] in mal.fake.refresh_tokens


# 7. The browser's command line carries a one-time address, not the state and verifier.
async def test_the_browser_gets_a_one_time_start_address(mal: MalStandIn, config: Path, tmp_path: Path) -> None:
    record = tmp_path / "argv"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{record}"\n')
    browser.chmod(0o755)
    before = config.read_bytes()
    args = ["-c", str(config), "--client-id", mal.app.client_id, "--client-secret", str(mal.app.secret)]
    process = await spawn_cli(*args, "--redirect-uri", mal.redirect, env=mal.env(BROWSER=str(browser), DISPLAY=":99"))
    try:
        await asyncio.wait_for(first_browser_run(record), 20)
        shown = record.read_text()
        assert shown.startswith(f"http://localhost:{mal.port}/start/")
        assert "state" not in shown
        assert "code_challenge" not in shown
        async with aiohttp.ClientSession() as session:
            async with session.get(shown, allow_redirects=False) as first:
                assert first.status == 302
                assert first.headers["Location"].startswith(f"{mal.base}/v1/oauth2/authorize?")
                assert "state=" in first.headers["Location"]
            async with session.get(shown, allow_redirects=False) as second:  # someone raced the user
                assert second.status == 400
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 1
    assert "opened twice" in err.decode()
    assert config.read_bytes() == before


async def first_browser_run(record: Path) -> None:
    while not record.exists() or not record.read_text():  # noqa: ASYNC110 (another process writes it)
        await asyncio.sleep(0.02)


# 8. -v shows no secret of any answer: Trakt's device_code included.
async def test_verbose_redacts_the_device_code(trakt: TraktStandIn, tmp_path: Path, no_input: int) -> None:
    config = tmp_path / "config.yml"
    config.write_text(EMPTY_TRAKT)
    trakt.fake.device_lifetime = 3
    clock = FakeClock()
    trakt.fake.clock = clock.wall
    io, said = quiet_io(trakt.env(), no_input, clock)
    with pytest.raises(TimedOut):
        await TRAKT.code.login_async(LoginOptions(config, TRAKT, trakt.app.client_id, trakt.app.secret), io)
    (device_code,) = trakt.fake.devices
    assert device_code[:6] in "\n".join(said.debugs)  # -v shows its first characters…
    assert device_code not in said.text  # …and never the whole


# 9. Every wait is capped by the code's expiry, whatever the service asks.
async def test_a_huge_retry_after_does_not_outlive_the_code(trakt: TraktStandIn, tmp_path: Path, no_input: int) -> None:
    config = tmp_path / "config.yml"
    config.write_text(EMPTY_TRAKT)
    trakt.fake.device_lifetime = 30
    slow_down = Scripted(429, "", headers={"Retry-After": "1e9"})
    trakt.fake.script(
        "/oauth/device/token", slow_down, Scripted(429, "", headers={"Retry-After": "inf"}), *[slow_down] * 40
    )
    clock = FakeClock()
    trakt.fake.clock = clock.wall
    io, _ = quiet_io(trakt.env(), no_input, clock)
    start = clock.time
    with pytest.raises(TimedOut, match="expired"):
        await TRAKT.code.login_async(LoginOptions(config, TRAKT, trakt.app.client_id, trakt.app.secret), io)
    assert clock.time - start <= 30  # it stopped waiting when the code expired, not a billion seconds later


# 10. Ctrl-C during a slow poll stops it (130), instead of being held, then lost.
async def test_ctrl_c_during_a_slow_poll_is_not_lost(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(EMPTY_TRAKT)
    trakt.fake.slow["/oauth/device/token"] = 60
    process = await spawn_cli("trakt", *trakt.args(config), env=trakt.env(MALCAPTURE_HTTP_TIMEOUT="0.5"))
    try:
        await first_hit(trakt.fake, "/oauth/device/token")  # a poll is on its way, and Trakt is slow
        process.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 130, err.decode()
    assert "Interrupted by Ctrl-C" in err.decode()
    assert "Could not reach" not in err.decode()
    assert config.read_text() == EMPTY_TRAKT


# 11. Silent connections cannot crowd out the redirect.
async def test_silent_connections_are_closed_and_make_room() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    guard = Guard(runner.server, silent_for=0.2, most=8)
    server = await asyncio.get_running_loop().create_server(guard, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent: list[socket.socket] = []
    try:
        for _ in range(40):  # a LAN peer's half-open connections
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setblocking(False)
            silent.append(sock)
        await asyncio.sleep(0)
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/") as response:
            assert await response.text() == "hello"  # the genuine request got in
        assert len(guard.open) <= 8
        loop = asyncio.get_running_loop()
        assert await asyncio.wait_for(loop.sock_recv(silent[-1], 1), 5) == b""  # closed once silent too long
    finally:
        for sock in silent:
            sock.close()
        server.close()
        await server.wait_closed()
        await runner.cleanup()


@pytest.fixture
async def callback() -> AsyncIterator[tuple[CallbackServer[Callback], str, list[str]]]:
    port = free_port()
    target = parse_redirect_uri(f"http://localhost:{port}/callback", "the app's page")
    rejected: list[str] = []
    server = CallbackServer(claim(target), target, lambda query: read_callback(query, STATE), rejected.append)
    await server.start()
    try:
        yield server, f"http://localhost:{port}", rejected
    finally:
        await server.close()


# 13. Browsers send every `localhost` cookie along: more than 8 KB of them is still the redirect.
async def test_the_redirect_with_many_cookies_is_taken(
    callback: tuple[CallbackServer[Callback], str, list[str]],
) -> None:
    server, base, _ = callback
    cookies = "; ".join(f"app{n}={'c' * 400}" for n in range(60))  # 24 KB, as many local web apps leave
    async with aiohttp.ClientSession() as session:
        pending = asyncio.ensure_future(
            session.get(f"{base}/callback?code=abc&state={STATE}", headers={"Cookie": cookies})
        )
        assert await asyncio.wait_for(asyncio.shield(server.result), 5) == Authorized("abc")
        server.finish(success("kometa_fan", "/x/config.yml", MAL))
        async with await pending as response:
            assert response.status == 200


# 15. A flood of forged requests is summed up, not written out one line each.
async def test_forged_requests_are_summed_up(callback: tuple[CallbackServer[Callback], str, list[str]]) -> None:
    server, base, rejected = callback
    async with aiohttp.ClientSession() as session:
        for n in range(50):
            async with session.get(f"{base}/callback?code=x{n}&state=forged") as response:
                assert response.status == 400
    assert len(rejected) == 1
    await server.close()
    assert rejected[-1] == "ignored 50 requests to the redirect URL that were not the redirect."


# 12. An endless answer is cut, not read into memory.
async def test_an_endless_answer_is_cut() -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        while True:
            await response.write(b'{"name": "' + b"x" * 65536)

    app = web.Application()
    app.router.add_get("/v2/users/@me", endless)
    runner, base = await serve_app(app)
    try:
        env = {"MALCAPTURE_OAUTH_URL": base, "MALCAPTURE_API_URL": f"{base}/v2"}
        async with MalClient(Setup(env, lambda _: None, Credentials("c" * 32, None))) as client:
            with pytest.raises(ServiceError, match="more than 256 KB"):
                await client.verify({"access_token": "t"})
    finally:
        await runner.cleanup()


# 14. Absurd numbers: a clear word, never a traceback.
async def test_absurd_numbers_get_plain_words(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(EMPTY_TRAKT)
    code = '{"device_code": "d", "user_code": "U", "verification_url": "x", "expires_in": 1e20, "interval": 5}'
    trakt.fake.script("/oauth/device/code", Scripted(200, code))
    result = await run_here("trakt", *trakt.args(config), env=trakt.env())
    assert (result.code, "cannot be right" in result.err) == (1, True), result.err
    for option in (["--timeout", "inf"], ["--timeout", "nan"]):
        result = await run_here("trakt", *trakt.args(config), *option, env=trakt.env())
        assert result.code == 2
        assert "is not a number of seconds from 1 to 86400" in result.err
    result = await run_here("refresh", "-c", str(config), "--if-expiring-within", "9999999999d", env=trakt.env())
    assert result.code == 2
    assert "longer than any token lives" in result.err


async def test_a_created_at_in_milliseconds_is_saved_and_said_plainly(trakt: TraktStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    stored_trakt(trakt, config)
    answer = trakt.fake.issue_tokens(trakt.app.client_id)
    answer["created_at"] = 1_764_000_000_000  # Trakt's nonsense: milliseconds
    trakt.fake.script("/oauth/token", Scripted(200, json.dumps(answer)))
    result = await run_here("trakt", "refresh", "-c", str(config), env=trakt.env())
    assert result.code == 0, result.err
    assert "Refreshed — saved to" in result.err
    assert "says nothing of when it expires" in result.err
    assert str(answer["refresh_token"]) in config.read_text()


# 18. Words about expiry that fit the token.
async def test_expiry_words_fit_the_token(mal: MalStandIn, config: Path) -> None:
    stored(mal, config)
    text = config.read_text()
    access = str(YAML(typ="safe").load(text)["mal"]["authorization"]["access_token"])
    config.write_text(text.replace(access, "not-a-jwt"))
    result = await run_here("refresh", "-c", str(config), "--if-expiring-within", "7d", env=mal.env())
    assert "Refreshing: the access token says nothing of when it expires" in result.err
    assert "  " not in result.err.splitlines()[0]
    assert "not a JWT" not in result.err
    header, _, signature = access.split(".")
    claims = json.loads(base64.urlsafe_b64decode(access.split(".")[1] + "=="))
    claims["exp"] = 253_402_300_800 + 86400  # 10000-01-02
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    config.write_text(text.replace(access, f"{header}.{payload}.{signature}"))
    result = await run_here("refresh", "-c", str(config), "--if-expiring-within", "7d", env=mal.env())
    assert result.code == 0
    assert "No refresh needed: the access token expires after the year 9999" in result.err


# Round two: another local user reads the start address and races a browser that was not yet running.
async def test_another_users_program_gets_nothing_from_the_start_address(
    mal: MalStandIn, config: Path, tmp_path: Path
) -> None:
    """The attacker (another uid) opens the one-time address first: it is refused, the login is not stopped,
    and the user's own browser, when it comes, is sent on and finishes the login."""
    needs_root()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("needs setpriv to run a program as another user")
    record, go = tmp_path / "argv", tmp_path / "go"
    browser = tmp_path / "browser"  # a browser that starts slowly: it waits for `go` before it opens the page
    browser.write_text(
        f"#!{sys.executable}\nimport asyncio, os, sys, time\nopen({str(record)!r}, 'w').write(sys.argv[1])\n"
        f"while not os.path.exists({str(go)!r}): time.sleep(0.02)\n"
        "from malcapture.standins.base import play_browser\nasyncio.run(play_browser(sys.argv[1]))\n"
    )
    browser.chmod(0o755)
    args = ["-c", str(config), "--client-id", mal.app.client_id, "--client-secret", str(mal.app.secret)]
    process = await spawn_cli(*args, "--redirect-uri", mal.redirect, env=mal.env(BROWSER=str(browser), DISPLAY=":99"))
    try:
        await asyncio.wait_for(first_browser_run(record), 20)
        start = record.read_text()
        other = (
            "import sys, urllib.request, urllib.error\ntry:\n    urllib.request.urlopen(sys.argv[1])\n"
            "except urllib.error.HTTPError as exc:\n    print(exc.code)\n"
        )
        attacker = await asyncio.create_subprocess_exec(
            setpriv,
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-c",
            other,
            start,
            stdout=asyncio.subprocess.PIPE,
            cwd="/",
        )
        out, _ = await asyncio.wait_for(attacker.communicate(), 30)
        assert out.decode().strip() == "400"
        go.touch()
        _, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    assert "another user of this machine" in err.decode()
    assert "Authorized as kometa_fan" in err.decode()


# Round two: whatever reaches Plex's forward port first only brings the poll forward; the page is the browser's.
async def test_the_forward_page_goes_to_the_browser_that_was_sent_there() -> None:
    port = free_port()
    target = parse_redirect_uri(f"http://localhost:{port}/", "plex.tv")
    said: list[str] = []
    server: CallbackServer[bool] = CallbackServer(
        claim(target), target, lambda query: True, said.append, ("/start/once", "http://127.0.0.1:9/auth"), forward=True
    )
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as stranger,  # a web page of another site, or any program
            stranger.get(f"http://localhost:{port}/") as first,
        ):
            assert "only tells malcapture to look again" in await first.text()
        assert server.result.done()  # it brought the next poll forward, nothing more
        async with aiohttp.ClientSession() as browser:  # the browser malcapture sent to the start address
            async with browser.get(f"http://localhost:{port}/start/once", allow_redirects=False) as started:
                assert started.status == 302
            pending = asyncio.ensure_future(browser.get(f"http://localhost:{port}/"))
            await asyncio.sleep(0)
            server.succeeded(Account("kometa_fan"), Path("/x/config.yml"), PLEX)
            async with await pending as forwarded:
                assert "Signed in as <b>kometa_fan</b>" in await forwarded.text()
    finally:
        await server.close()


# Round one, still open then: 1,100 silent connections on --bind 0.0.0.0 with `ulimit -n 1024`.
async def test_the_redirect_gets_through_1100_silent_connections_with_1024_descriptors(
    mal: MalStandIn, config: Path
) -> None:
    import resource

    prlimit = shutil.which("prlimit")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if prlimit is None or (hard != resource.RLIM_INFINITY and hard < 1500):
        pytest.skip("needs prlimit, and 1,500 descriptors for the test's own connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1500), hard))
    args = [*mal.args(config, "--bind", "0.0.0.0", "--no-browser", "--timeout", "60")]
    process = await asyncio.create_subprocess_exec(
        prlimit,
        "--nofile=1024:1024",
        sys.executable,
        "-m",
        "malcapture",
        *args,
        env=mal.env(),
        stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    silent: list[socket.socket] = []
    try:
        url = ""
        while not url:
            line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
            assert line
            url = line.strip() if "/v1/oauth2/authorize?" in line else ""
        for _ in range(1100):  # opened and never a byte sent: a scanner, or someone who wants the port's code
            sock = socket.socket()
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect(("127.0.0.1", mal.port))
            silent.append(sock)
        mal.fake.consent = "allow"
        status, page = await play_browser(url)
        assert status == 200, page
        assert "Authorized as <b>kometa_fan</b>" in page
        _, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        for sock in silent:
            sock.close()
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()


# Round two: what services send.
async def test_a_token_answer_labelled_with_an_unknown_charset_is_read_as_utf8(mal: MalStandIn, config: Path) -> None:
    old = stored(mal, config)
    tokens = mal.fake.issue_tokens(mal.app.client_id)
    del mal.fake.refresh_tokens[str(old["refresh_token"])]  # the refresh spends the old one, as MAL's would
    mal.fake.script(
        "/v1/oauth2/token", Scripted(200, json.dumps(tokens), content_type="application/json; charset=utf8mb4")
    )
    result = await run_cli("refresh", "-c", str(config), env=mal.env())
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    assert str(tokens["refresh_token"]) in config.read_text()


async def test_a_services_words_reach_the_terminal_without_their_escape_sequences(
    mal: MalStandIn, config: Path
) -> None:
    stored(mal, config)
    mal.fake.user = "fan\x1b]0;pwned\x07\x1b[2J\u202emoc.live"  # sets the title, clears the screen, reverses text
    result = await run_cli("check", "-c", str(config), env=mal.env())
    assert result.code == 0, result.err
    assert "\x1b" not in result.out + result.err
    assert "\u202e" not in result.out + result.err
    assert "fan\\x1b]0;pwned\\x07\\x1b[2J\\u202emoc.live" in result.out
    found = await run_here("check", "-c", str(config), "--json", env=mal.env())
    assert json.loads(found.out)["account"] == mal.fake.user  # JSON carries it whole, escaped by JSON itself
    assert "\x1b" not in found.out
