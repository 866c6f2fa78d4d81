"""plex.url, as the check after a sign-in settles it: the server at a configured plex.url with the token
(its name, whether it allows sync, a shared server's own token), or, where plex.url is blank, the best
answering connection of the account's server (servers.py finds and ranks them) to write."""

from __future__ import annotations

from typing import Any, NamedTuple

from malcapture.services.plex.servers import (
    PROBE_DEADLINE,
    Answered,
    Candidate,
    answering,
    by_server,
    reach_note,
    same_server,
)


class Said(NamedTuple):
    """What the server check found, for the Account (login/contract.py)."""

    notes: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    writes: dict[str, Any] | None = None
    blocks: str | None = None


SHARED = (
    "{name} is shared with you: its owner can revoke this access at any time. Kometa uses the server's own "
    "token for you (from plex.tv's list), not your account's, which a shared server refuses."
)
RELAY_ONLY = (
    "the only connection to {name} that answers from here is Plex's relay, which is slow and capped: Kometa works "
    "through it, but turn on Remote Access on the server, or run Kometa where the server is local."
)


async def at_configured_url(client: Any, token: str) -> Said:
    """The server at plex.url (or --url) with the token: its name and whether it allows sync; a shared server's
    own token when it refuses the account's; where it cannot be reached, another connection that answers."""
    from malcapture.errors import NetworkError, ServiceError
    from malcapture.http import without_password

    url = client.server
    try:
        answer = await client.at(url, token)
    except NetworkError as exc:
        return Said(notes=(await _unreachable(client, token, url, exc.what),))
    except ServiceError as exc:
        if exc.status is not None and 300 <= exc.status < 400:
            where = exc.what.split(" to ", 1)[-1].split(";", 1)[0]
            note = f"plex.url {without_password(url)} redirects to {where}: write that address into plex.url."
            return Said(notes=(note,), blocks=note)
        raise
    if answer.status in (401, 403):
        shared = await _shared_token(client, token, url)
        if shared is not None:
            return shared
        raise ServiceError(
            f"the Plex server at {without_password(url)} refuses this token (HTTP {answer.status}): Kometa would stop "
            'with "Plex token is invalid".',
            "Run `malcapture plex` and sign in with an account that has access to that server (its owner, or a "
            "user it is shared with), or check plex.url.",
            answer.status,
        )
    return _from_root(answer, url)


async def fill_blank_url(client: Any, token: str, servers: list[Candidate] | None) -> Said:
    """A blank plex.url: the best answering connection of the one server (or the one chosen), to write."""
    import time

    if servers is None:
        return Said(
            notes=(
                "plex.url is blank, and plex.tv's list of your servers could not be read: write the "
                "server's address into plex.url, or pass --url.",
            )
        )
    if not servers:
        return Said(
            notes=(
                "plex.url is blank, and plex.tv lists no Plex Media Server for this account: write the "
                "server's address into plex.url, or pass --url.",
            )
        )
    answers = await answering(servers, client.identity, time.monotonic)
    grouped = by_server(answers)
    if not grouped:
        return Said(notes=(_none_answered(servers),))
    picked, why = await _choose(client, grouped, servers)
    if picked is None:
        return Said(notes=(why,))
    best = picked[0]
    said = _from_root(await client.at(best.candidate.url, best.candidate.token), best.candidate.url)
    writes: dict[str, Any] = {"url": _if_blank(best.candidate.url)}
    notes = said.notes
    if not best.candidate.owned:
        writes["token"] = _set(best.candidate.token)
        notes += (SHARED.format(name=best.candidate.server),)
    if best.candidate.relay:
        notes += (RELAY_ONLY.format(name=best.candidate.server),)
    fact = f"plex.url was blank: {best.describe()}, {why}."
    return Said(notes, (fact, *said.facts), writes, said.blocks)


async def _choose(
    client: Any, grouped: dict[str, list[Answered]], servers: list[Candidate]
) -> tuple[list[Answered] | None, str]:
    """The server to write (its answers) and why; None and what to do where it cannot be told."""
    import asyncio

    options = list(grouped.values())
    names = ", ".join(f"{answers[0].candidate.server!r}" for answers in options)
    if client.chosen:
        wanted = str(client.chosen).strip().lower()
        match = [answers for answers in options if answers[0].candidate.server.lower() == wanted]
        if match:
            return match[0], "chosen with --server"
        return None, f"no server named {client.chosen!r} answers from here (these do: {names}); plex.url stays blank."
    if len(options) == 1:
        return options[0], "the one server of yours that answers from here"
    if client.ask is None:
        listed = "; ".join(answers[0].describe() for answers in options)
        return None, (
            f"plex.url stays blank: several servers answer ({listed}). Pass --server NAME to choose one, or "
            "write its address into plex.url."
        )
    lines = [f"  {n}. {answers[0].describe()}" for n, answers in enumerate(options, 1)]
    question = (
        "Several Plex servers answer from here:\n"
        + "\n".join(lines)
        + f"\nWhich one should Kometa use? [1-{len(options)}]"
    )
    while True:
        answer = (await asyncio.to_thread(client.ask, question, False)).strip()
        if not answer:
            return None, "none was chosen: plex.url stays blank (pass --server NAME, or write its address there)."
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return options[int(answer) - 1], "chosen at the terminal"


def _none_answered(servers: list[Candidate]) -> str:
    tried = ", ".join(sorted({c.url for c in servers}))
    reach = "; ".join(note for note in {reach_note(c) for c in servers} if note)
    return (
        f"plex.url stays blank (the token is saved): none of your servers answered from here within "
        f"{PROBE_DEADLINE:g} seconds — tried {tried}."
        + (f" ({reach}.)" if reach else "")
        + " If Kometa runs on another machine, write the address it reaches the server at into plex.url."
    )


async def _unreachable(client: Any, token: str, url: str, what: str) -> str:
    import time

    from malcapture.http import without_password

    said = f"the Plex server at {without_password(url)} could not be reached from here ({what}) — the token is kept"
    servers = await client.servers(token) or []
    machine = same_server(url, servers)
    mine = [c for c in servers if machine is None or c.machine == machine]
    answers = await answering(mine, client.identity, time.monotonic) if mine else []
    if answers:
        return (
            f"{said}. {answers[0].describe()} answers: if Kometa runs here, write that into plex.url (or pass "
            f"--url {answers[0].candidate.url} to replace it)."
        )
    return f"{said}; Kometa may run elsewhere."


async def _shared_token(client: Any, token: str, url: str) -> Said | None:
    """A shared server refuses the account's token: with the server's own token from plex.tv's list, if it takes it."""
    servers = await client.servers(token) or []
    machine = same_server(url, servers)
    own = next((c for c in servers if c.machine == machine and not c.owned and c.token and c.token != token), None)
    if own is None:
        return None
    answer = await client.at(url, own.token)
    if answer.status != 200:
        return None
    said = _from_root(answer, url)
    return said._replace(writes={"token": _set(own.token)}, notes=(*said.notes, SHARED.format(name=own.server)))


def _from_root(answer: Any, url: str) -> Said:
    """The server's answer to `GET /`: its name, and whether this token may sync (Kometa stops otherwise)."""
    from malcapture.http import without_password
    from malcapture.services.plex.words import READ_ONLY, xml_root

    if answer.status != 200:
        note = (
            f"the server at {without_password(url)} answered HTTP {answer.status}, not as a Plex Media Server does: "
            'Kometa would stop with "Plex URL is probably invalid". Check plex.url.'
        )
        return Said(notes=(note,), blocks=note)
    root = xml_root(answer.body)
    name = root.get("friendlyName") if root is not None else None
    sync = root is not None and root.get("allowSync") == "1"
    fact = f"The Plex server {name or '(unnamed)'} at {without_password(url)} takes the token" + (
        " and allows sync." if sync else " but does not allow sync."
    )
    if not sync:
        return Said(notes=(READ_ONLY,), facts=(fact,), blocks=READ_ONLY)
    return Said(facts=(fact,))


def _if_blank(value: str) -> Any:
    from malcapture.config.place import IfBlank

    return IfBlank(value)


def _set(value: str) -> Any:
    from malcapture.config.place import Set

    return Set(value)
