"""Plex's other half (services/plex/servers.py): a blank plex.url found among the account's servers, tried
from here at once and ranked as Plex's clients rank them; a shared server's own token; a plex.url that does
not answer while another connection does; and what check and status say of the server — against the
stand-in's plex.tv (its /api/v2/resources) and Plex Media Servers on loopback.

The search runs in the test's event loop (on a FakeClock, so the PIN's poll passes at once); the real
command runs where its options, the terminal or the process's trust store matter."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from malcapture.services.plex.servers import Answered, Candidate, rank, reach_note
from malcapture.standins.plex import Connection, FakePlexServer, serve_server
from tests.helpers import PlexStandIn, free_port, plex_link_login, run_cli, run_here, spawn_cli
from tests.terminal import Terminal

CONFIG = "settings:\n  cache: true\nplex:\n  url:\n  token:\n  timeout: 60\n"


def plex_section(config: Path) -> dict[str, object]:
    section: dict[str, object] = YAML(typ="safe").load(config.read_text())["plex"]
    return section


@pytest.fixture
async def second(plex: PlexStandIn) -> AsyncIterator[tuple[FakePlexServer, str]]:
    """Another Plex Media Server of the account's (a friend's, or a second of the user's own)."""
    server = FakePlexServer(plex=plex.fake, name="Cabin")
    runner, url = await serve_server(server)
    try:
        yield server, url
    finally:
        await runner.cleanup()


@pytest.fixture
def hanging() -> Iterator[str]:
    """An address that accepts connections and never answers (a firewall that drops, a server that hangs)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


async def link_login(plex: PlexStandIn, config: Path, no_input: int, env: dict[str, str] | None = None) -> str:
    """`malcapture plex --link` in this event loop: what it said (its debug lines too) and the facts and notes
    the command says after the save, once it saved."""
    result, said = await plex_link_login(plex, config, no_input, env=env)
    assert result.saved_to == config.resolve(), said.text
    account = result.account
    after = [*account.facts, *(f"Warning: {note}" for note in account.notes)] if account else []
    return "\n".join([said.text, *after])


async def real_link_login(
    plex: PlexStandIn, config: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    """`malcapture plex` as a user runs it without a display: the code is typed at plex.tv/link once shown."""
    process = await spawn_cli("plex", "-c", str(config), *extra, env=env or plex.env())
    assert process.stderr is not None
    shown = ""
    while "Waiting for your approval" not in shown:
        line = (await asyncio.wait_for(process.stderr.readline(), 20)).decode()
        assert line, shown
        shown += line
    lines = shown.splitlines()
    plex.fake.sign_in(lines[lines.index(f"{plex.base}/link") + 1])
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, shown + err.decode()


async def test_one_owned_server_fills_a_blank_url_with_its_best_connection(
    plex: PlexStandIn, tmp_path: Path, hanging: str, no_input: int
) -> None:
    local = plex.app.url.replace("127.0.0.1", "localhost")  # two names of one server: the local one wins
    plex.app.publish(
        Connection(f"http://127.0.0.1:{free_port()}", local=True),  # refuses
        Connection(hanging, local=True),  # never answers: the deadline, not a wait per candidate
        Connection(plex.app.url, local=False),
        Connection(local, local=True),
    )
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    said = await link_login(plex, config, no_input, env=plex.env(MALCAPTURE_HTTP_TIMEOUT="2"))
    assert plex_section(config)["url"] == local
    assert "plex.url was blank: Living room (owned, local, http, answered in" in said
    assert "the one server of yours that answers from here" in said
    assert "The Plex server Living room at" in said
    assert "allows sync" in said
    assert plex.app.hits["/identity"] >= 2


async def test_several_servers_take_server_name_or_stay_blank_with_the_list(
    plex: PlexStandIn, tmp_path: Path, second: tuple[FakePlexServer, str]
) -> None:
    cabin, cabin_url = second
    plex.app.publish(Connection(plex.app.url))
    cabin.publish(Connection(cabin_url))
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    code, said = await real_link_login(plex, config)  # no terminal, no --server: nothing to guess
    assert code == 0, said
    assert plex_section(config)["url"] is None
    assert "several servers answer" in said
    assert "Pass --server NAME" in said
    assert "Living room (owned" in said
    assert "Cabin (owned" in said
    config.write_text(CONFIG)
    code, said = await real_link_login(plex, config, "--server", "cabin", "-y")
    assert code == 0, said
    assert plex_section(config)["url"] == cabin_url
    assert "chosen with --server" in said


async def test_at_a_terminal_the_server_is_chosen_from_a_numbered_list(
    plex: PlexStandIn, tmp_path: Path, second: tuple[FakePlexServer, str]
) -> None:
    cabin, cabin_url = second
    plex.app.publish(Connection(plex.app.url))
    cabin.publish(Connection(cabin_url))
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    term = Terminal()
    try:
        process = await term.malcapture("plex", "-c", str(config), "--link", env=plex.env())
        shown = await term.expect("Waiting for your approval")
        lines = [line.strip() for line in shown.splitlines()]
        plex.fake.sign_in(lines[lines.index(f"{plex.base}/link") + 1])
        asked = await term.expect("Which one should Kometa use? [1-2]")
        number = next(line.split(".")[0].strip() for line in asked.splitlines() if "Cabin (owned" in line)
        term.type(f"{number}\r")
        assert await term.finish(process) == 0, term.output
    finally:
        term.close()
    assert plex_section(config)["url"] == cabin_url
    assert "chosen at the terminal" in " ".join(term.output.split())  # wrapped to the terminal's width


async def test_a_shared_server_gets_its_own_token_and_the_owner_can_revoke_it(
    plex: PlexStandIn, tmp_path: Path, second: tuple[FakePlexServer, str], no_input: int
) -> None:
    friend, friend_url = second
    friend.shared = True  # refuses the account's token: only its own for this account
    resource = friend.publish(Connection(friend_url), owned=False)
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    said = await link_login(plex, config, no_input)
    section = plex_section(config)
    assert section["url"] == friend_url
    assert section["token"] == resource.token  # the server's own token, not the account's
    assert section["token"] not in plex.fake.tokens
    assert "Cabin is shared with you: its owner can revoke this access" in said


async def test_a_set_url_for_a_shared_server_gets_its_token_too(
    plex: PlexStandIn, tmp_path: Path, second: tuple[FakePlexServer, str], no_input: int
) -> None:
    friend, friend_url = second
    friend.shared = True
    resource = friend.publish(Connection(friend_url), owned=False)
    config = tmp_path / "config.yml"
    config.write_text(CONFIG.replace("  url:\n", f"  url: {friend_url}\n"))
    await link_login(plex, config, no_input)
    assert plex_section(config)["token"] == resource.token
    assert plex_section(config)["url"] == friend_url


async def test_none_answering_says_what_was_tried_and_keeps_the_url_blank(
    plex: PlexStandIn, tmp_path: Path, hanging: str, no_input: int
) -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    plex.app.publish(Connection(refused), Connection(hanging))
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    said = await link_login(plex, config, no_input, env=plex.env(MALCAPTURE_HTTP_TIMEOUT="1"))
    section = plex_section(config)
    assert section["url"] is None
    assert section["token"] in plex.fake.tokens  # the token is still saved
    assert "none of your servers answered from here" in said
    assert refused in said
    assert hanging in said


async def test_a_set_url_that_does_not_answer_is_kept_and_another_connection_suggested(
    plex: PlexStandIn, tmp_path: Path, no_input: int
) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    plex.app.publish(Connection(gone), Connection(plex.app.url, local=False))
    config = tmp_path / "config.yml"
    config.write_text(CONFIG.replace("  url:\n", f"  url: {gone}\n"))
    said = await link_login(plex, config, no_input)
    assert plex_section(config)["url"] == gone  # a set plex.url is never replaced without --url
    assert f"the Plex server at {gone} could not be reached from here" in said
    assert f"--url {plex.app.url}" in said


async def test_only_the_relay_answering_is_said(plex: PlexStandIn, tmp_path: Path, no_input: int) -> None:
    plex.app.publish(Connection(plex.app.url, local=False, relay=True))
    config = tmp_path / "config.yml"
    config.write_text(CONFIG)
    said = await link_login(plex, config, no_input)
    assert plex_section(config)["url"] == plex.app.url
    assert "Plex's relay, which is slow and capped" in said


def test_ranked_as_plex_clients_rank_them() -> None:
    def answered(url: str, local: bool, relay: bool, ms: int) -> Answered:
        return Answered(Candidate("S", "m", True, "t", url, local, relay, ""), ms)

    found = [
        answered("http://relay:1", False, True, 1),
        answered("http://remote:1", False, False, 2),
        answered("https://remote:1", False, False, 9),
        answered("http://local:1", True, False, 5),
        answered("https://local:1", True, False, 50),
    ]
    assert [a.candidate.url for a in rank(found)] == [
        "https://local:1",
        "http://local:1",
        "https://remote:1",
        "http://remote:1",
        "http://relay:1",
    ]


def test_docker_bridge_and_link_local_addresses_are_named() -> None:
    def candidate(address: str) -> Candidate:
        return Candidate("S", "m", True, "t", f"http://{address}:32400", True, False, address)

    assert "Docker bridge address" in str(reach_note(candidate("172.18.0.2")))
    assert "link-local" in str(reach_note(candidate("169.254.10.1")))
    assert "link-local" in str(reach_note(candidate("fe80::1")))
    assert reach_note(candidate("192.0.2.7")) is None


# The truth about whether Kometa will run.
async def test_check_names_the_server_and_status_fails_on_a_read_only_token(
    plex: PlexStandIn, tmp_path: Path, no_input: int
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(CONFIG.replace("  url:\n", f"  url: {plex.app.url}\n"))
    await link_login(plex, config, no_input)
    check = await run_here("plex", "check", "-c", str(config), env=plex.env())
    assert check.code == 0, check.err
    assert f"The Plex server Living room at {plex.app.url} takes the token and allows sync." in check.out
    plex.app.allow_sync = "0"
    status = await run_here("status", "-c", str(config), "--json", env=plex.env())
    assert status.code == 1
    (found,) = json.loads(status.out)
    assert found["works"] is False
    assert "read only" in found["problem"]
    assert found["fix"] == "Run `malcapture plex` to sign in again."
    plex.app.allow_sync = "1"
    plex.app.refused.update(plex.fake.tokens)
    status = await run_here("status", "-c", str(config), env=plex.env())
    assert status.code == 1
    assert "refuses this token (HTTP 401)" in status.out
    assert "Run `malcapture plex`" in status.out


async def test_a_plex_url_the_parser_refuses_stops_before_the_sign_in(plex: PlexStandIn, tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    text = CONFIG.replace("  url:\n", "  url: http://[127.0.0.1]:32400\n")
    config.write_text(text)
    result = await run_cli("plex", "-c", str(config), env=plex.env())
    assert result.code == 2, result.err
    assert "is not a URL Kometa can open" in result.err
    assert "Traceback" not in result.err
    assert plex.fake.hits["/api/v2/pins"] == 0
    assert config.read_text() == text


async def test_a_password_in_plex_url_is_never_shown(plex: PlexStandIn, tmp_path: Path, no_input: int) -> None:
    config = tmp_path / "config.yml"
    port = free_port()
    config.write_text(CONFIG.replace("  url:\n", f"  url: http://kometa:hunter2@127.0.0.1:{port}\n"))
    said = await link_login(plex, config, no_input)
    assert "hunter2" not in said
    assert f"http://kometa:***@127.0.0.1:{port}" in said
    status = await run_here("status", "-c", str(config), "--json", env=plex.env())
    assert "hunter2" not in status.out + status.err


async def test_https_and_ipv6_connections_are_tried_and_https_wins(plex: PlexStandIn, tmp_path: Path) -> None:
    """The server also answers over TLS (a test certificate, trusted as a plex.direct one is) and on ::1: the
    https connection is chosen over the plain ones, as Plex's clients choose."""
    from malcapture.standins.base import serve_app
    from tests.link import certificate

    cert, context = certificate(tmp_path)
    tls_runner, tls_url = await serve_app(plex.app.application(), tls=context)
    v6_runner, v6_url = await serve_app(plex.app.application(), host="::1")
    try:
        secure = tls_url.replace("127.0.0.1", "localhost")
        plex.app.publish(Connection(plex.app.url), Connection(v6_url), Connection(secure))
        config = tmp_path / "config.yml"
        config.write_text(CONFIG)
        code, said = await real_link_login(plex, config, env=plex.env(SSL_CERT_FILE=str(cert)))
    finally:
        await v6_runner.cleanup()
        await tls_runner.cleanup()
    assert code == 0, said
    assert plex_section(config)["url"] == secure
    assert "(owned, local, https, answered in" in said
    assert plex.app.hits["/identity"] >= 3  # plain, IPv6 and TLS all tried


async def test_a_plex_url_that_redirects_is_said_with_the_address_to_write(
    plex: PlexStandIn, tmp_path: Path, no_input: int
) -> None:
    """A reverse proxy sends http:// to https://: the token rightly does not follow, and check says where to
    point plex.url instead of calling the token broken."""
    from aiohttp import web

    from malcapture.standins.base import serve_app

    async def moved(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently("https://plex.example.org/")

    proxy = web.Application()
    proxy.router.add_route("GET", "/{tail:.*}", moved)
    runner, proxy_url = await serve_app(proxy)
    try:
        config = tmp_path / "config.yml"
        config.write_text(CONFIG.replace("  url:\n", f"  url: {plex.app.url}\n"))
        await link_login(plex, config, no_input)
        config.write_text(config.read_text().replace(plex.app.url, proxy_url))
        check = await run_here("plex", "check", "-c", str(config), env=plex.env())
    finally:
        await runner.cleanup()
    assert check.code == 1
    assert f"plex.url {proxy_url} redirects to https://plex.example.org/: write that address into plex.url" in check.err
    assert "token is not valid" not in check.err
