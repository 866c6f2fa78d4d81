"""Kometa's config.yml: read it, check it before the browser opens, and save new tokens into it."""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import re
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node

from malcapture import lock
from malcapture.atomic import ChangedMeanwhile, Rename, Replaced, replace_file
from malcapture.errors import ConfigError, TokensNotSaved, UnusableTokens, UsageError
from malcapture.placeholders import env_name, is_placeholder, kometa_secrets, resolve
from malcapture.readback import has_anchors, section_window
from malcapture.sections import MAL, SECTIONS, Section
from malcapture.splice import Edit, Splicer, Updates, apply, block_lines
from malcapture.tokens import STAND_INS, TokenSet, jwt_expiry

BOM = b"\xef\xbb\xbf"
SAVE_TRIES = 3  # an edit made to the file during the save is spliced into, this many times at most
WRITE_ADVICE = (
    "Make the file and its folder writable for this user (`ls -l` shows owner and mode; in Docker, "
    "mount the config folder without :ro), or use --print to get the mal: block without touching it."
)


def default_path() -> Path:
    nested = Path("config/config.yml")
    return nested if nested.exists() else Path("config.yml")


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str | None = field(repr=False)


@dataclass(frozen=True)
class KometaConfig:
    path: Path
    target: Path
    raw: bytes = field(repr=False)
    text: str = field(repr=False)
    newline: str
    documents: int
    root: MappingNode = field(repr=False)
    data: dict[str, Any] = field(repr=False)

    def section(self, section: Section = MAL) -> dict[str, Any]:
        found = self.data.get(section.name)
        return found if isinstance(found, dict) else {}

    def setting(self, key: str, env: Mapping[str, str], section: Section = MAL) -> str | None:
        """A value of the section as Kometa would see it: placeholders resolved, blanks as None.
        Token keys are read from its `authorization:`."""
        values = self.section(section)
        value = values.get(key)
        if key in section.token_keys:
            auth = values.get("authorization")
            value = auth.get(key) if isinstance(auth, dict) else None
        if value is None or str(value).strip() == "":
            return None
        text = str(value)
        if is_placeholder(text):
            text = resolve(text, kometa_secrets(env, self.target.parent))
            if is_placeholder(text):
                raise UsageError(
                    f"{section.name}.{key} in {self.path} is {value}, but {env_name(str(value))} is not set.",
                    f"Set it in the environment or in {self.target.parent / '.env'} (as Kometa reads it).",
                )
        return text.strip()


def load(path: Path) -> KometaConfig:
    try:
        kind = os.stat(path).st_mode
        if not stat.S_ISREG(kind) and not stat.S_ISDIR(kind):
            raise ConfigError(
                f"{path} is not a regular file (it is a pipe, socket or device), so malcapture will not read it.",
                "Point --config (or KOMETA_CONFIG) at Kometa's config.yml itself.",
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        broken = " (a symlink to a file that does not exist)" if path.is_symlink() else ""
        raise ConfigError(
            f"The config file {path} does not exist{broken}.",
            "Point --config (or KOMETA_CONFIG) at Kometa's config.yml; without it malcapture looks for "
            "config/config.yml, then config.yml, in the current folder.",
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a folder, not a config file.", "Pass the config.yml inside it.") from None
    except OSError as exc:
        raise ConfigError(f"The config file {path} cannot be read: {exc.strerror}.", advice_for(exc)) from None
    return parse(path, raw)


def parse(path: Path, raw: bytes) -> KometaConfig:
    body = raw[len(BOM) :] if raw.startswith(BOM) else raw
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}).", "Save it as UTF-8.") from None
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _KeepingConstructor
    try:
        nodes = list(yaml.compose_all(text))
        data = yaml.constructor.construct_document(nodes[0]) if nodes else None
    except MarkedYAMLError as exc:
        raise _invalid(path, text, exc) from None
    except YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}.", "Kometa would refuse it too.") from None
    finally:
        _KeepingConstructor.restore(yaml.constructor)
    if not isinstance(data, dict) or not isinstance(nodes[0], MappingNode):
        raise ConfigError(f"{path} does not hold Kometa settings (it is not a YAML mapping).")
    for section in SECTIONS:
        found = data.get(section.name)
        if found is not None and not isinstance(found, dict):
            raise ConfigError(f"{section.name}: in {path} is not a section of settings.", "Kometa would refuse it too.")
        _refuse_merged_section(path, nodes[0], data, section.name)
    crlf = re.search(r"\r?\n", text)
    return KometaConfig(
        path=path,
        target=Path(os.path.realpath(path)),
        raw=raw,
        text=text,
        newline=crlf.group(0) if crlf else "\n",
        documents=len(nodes),
        root=nodes[0],
        data=data,
    )


class _KeepingConstructor(SafeConstructor):
    """ruamel.yaml flattens `<<:` merges into the composed nodes; the splice needs them as written."""

    def flatten_mapping(self, node: Any) -> Any:
        if not hasattr(self, "kept"):
            self.kept: list[tuple[MappingNode, list[Any]]] = []
        self.kept.append((node, list(node.value)))
        return super().flatten_mapping(node)

    @staticmethod
    def restore(constructor: Any) -> None:
        for node, value in reversed(getattr(constructor, "kept", [])):
            node.value = value


def _refuse_merged_section(path: Path, root: MappingNode, data: dict[str, Any], name: str) -> None:
    own = {key.value for key, _ in root.value if isinstance(key, Node)}
    if name in data and name not in own:
        merge = next((k for k, _ in root.value if getattr(k, "value", None) == "<<"), None)
        line = f" (line {merge.start_mark.line + 1})" if merge is not None else ""
        raise ConfigError(
            f"{path} has no {name}: section of its own: it comes from a merge key{line}, "
            "so changing it would change the section it is merged from.",
            f"Write a {name}: section of its own into the file (it overrides the merged one), "
            "then run malcapture again.",
        )


def snippet(text: str, line: int, column: int) -> str:
    """The line before and the offending line, numbered, with a caret under the column (as editors show)."""
    lines = text.splitlines()
    if not lines:
        return ""
    if line >= len(lines):  # the end of the file: point past its last line
        line, column = len(lines) - 1, len(lines[-1])
    width = len(str(line + 1))
    shown = [f"  {n + 1:>{width}} | {lines[n]}" for n in range(max(0, line - 1), line + 1)]
    return "\n".join([*shown, f"  {'':>{width}} | {' ' * column}^"])


def _invalid(path: Path, text: str, exc: MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
    shown = snippet(text, mark.line, mark.column) if mark else ""
    start = exc.context_mark
    if start is not None and mark is not None and start.line != mark.line:  # e.g. where an unclosed quote opened
        shown = (
            f"{snippet(text, start.line, start.column)}\n  …\n{shown}"
            if shown
            else snippet(text, start.line, start.column)
        )
    if shown:
        shown = f"\n{shown}\n"
    problem = exc.problem or ""
    duplicate = re.match(r'found duplicate key "(.*?)" with value', problem)
    if duplicate:
        first = exc.context_mark.line + 1 if exc.context_mark else "?"
        return ConfigError(
            f"{path} has the key {duplicate.group(1)!r} twice ({where}; first at line {first}).",
            "Kometa refuses such a file too: merge the two into one.",
        )
    advice = "YAML does not allow tabs for indentation: use spaces. " if "\\t" in problem or "\t" in problem else ""
    if mark and mark.line > 0:
        advice += "The mistake may be at the end of the line before (an unclosed quote or bracket). "
    return ConfigError(
        f"{path} is not valid YAML at {where}: {problem}.{shown}", advice + "Kometa would refuse it too."
    )


def stored_expiry(config: KometaConfig, env: Mapping[str, str], section: Section = MAL) -> datetime | None:
    """When the stored access token runs out: its JWT's `exp`, or `created_at + expires_in` (Trakt's)."""
    access = config.setting("access_token", env, section)
    if access is None:
        return None
    if not section.opaque_tokens:
        return jwt_expiry(access)
    try:
        created = int(config.setting("created_at", env, section) or "")
        lifetime = int(config.setting("expires_in", env, section) or "")
        return datetime.fromtimestamp(created + lifetime, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def check_writable(config: KometaConfig) -> None:
    """The file must be writable. Its folder need not be: then the file is written in place, without a backup."""
    if not os.access(config.target, os.W_OK):
        raise ConfigError(f"The config file {config.path} is not writable.", WRITE_ADVICE)


@dataclass(frozen=True)
class Plan:
    """A save worked out and proven: the new bytes read back as the old data with `updates` applied."""

    config: KometaConfig
    updates: dict[str, Any]
    raw: bytes = field(repr=False)
    changes: tuple[str, ...]


@dataclass(frozen=True)
class Saved:
    path: Path
    backup: Path | None
    placeholders: tuple[str, ...]  # authorization values left alone because they are <<placeholders>>
    changes: tuple[str, ...] = ()  # what changed, in words, with line numbers


def plan_save(config: KometaConfig, tokens: TokenSet, creds: Credentials, section: Section = MAL) -> Plan:
    """Splice the new values in and prove the result; any refusal is a ConfigError naming the place."""
    updates = plan_updates(config, tokens, creds, section)
    edits = splice_edits(config, updates, section)
    text = apply(config.text, edits)
    verify(config, text, edits, updates, section)
    raw = (BOM if config.raw.startswith(BOM) else b"") + text.encode("utf-8")
    return Plan(config, updates, raw, describe_changes(config, text, edits, updates, section))


def splice_edits(config: KometaConfig, updates: dict[str, Any], section: Section = MAL) -> list[Edit]:
    """Where in the text `updates` go; not yet proven (plan_save proves them)."""
    splicer = Splicer(config.text, config.newline, config.documents == 1)
    return splicer.section(config.root, section.name, updates)


def prove_save(config: KometaConfig, creds: Credentials, section: Section = MAL) -> None:
    """Before anything is spent (a code, a refresh token): the save of tokens of the real shape works."""
    plan_save(config, STAND_INS[section.name], creds, section)


def save_tokens(
    config: KometaConfig,
    tokens: TokenSet,
    creds: Credentials,
    rename: Rename = os.replace,
    section: Section = MAL,
    planned: Plan | None = None,
) -> Saved:
    """Write the tokens in; `planned`, made from the same tokens ahead of time, is used if the file is unchanged."""
    started = time.time()
    for _ in range(SAVE_TRIES):
        current = _read_again(config)
        if current != config.raw:  # edited since it was read: splice into what is there now
            config = parse(config.path, current)
        check_writable(config)
        fresh = planned is not None and planned.config.raw == current
        plan = planned if planned is not None and fresh else plan_save(config, tokens, creds, section)
        planned = None
        try:
            replaced = replace_file(config.target, plan.raw, old=current, rename=rename, started=started)
        except ChangedMeanwhile:
            continue
        except OSError as exc:
            raise ConfigError(f"Could not write {config.path}: {exc.strerror or exc}.", advice_for(exc)) from None
        left = tuple(k for k in tokens.as_mapping() if k not in plan.updates["authorization"])
        return Saved(config.path, replaced.backup, left, plan.changes + _where_backup(replaced))
    raise ConfigError(f"{config.path} kept changing while malcapture tried to save into it.", "Run it again.")


def _read_again(config: KometaConfig) -> bytes:
    try:
        return config.target.read_bytes()
    except OSError as exc:
        raise ConfigError(f"The config file {config.path} cannot be read again: {exc.strerror}.") from None


def _where_backup(replaced: Replaced) -> tuple[str, ...]:
    if replaced.backup is None:
        return (
            ("Its folder is read-only, so it was written in place and no backup was kept.",)
            if replaced.in_place
            else ()
        )
    told = f"The previous version is kept as {replaced.backup}."
    if replaced.backup.name.endswith(".malcapture.bak"):
        theirs = replaced.backup.with_name(replaced.backup.name.removesuffix(".malcapture.bak") + ".bak")
        told += f" ({theirs} was not written by malcapture, so it was left alone.)"
    if replaced.single_file_mount:
        told += (
            " The config is a file mounted on its own (a single-file bind mount), so that backup is not on "
            "the mounted disk: in a container it is gone when the container is removed — copy it out if you want it."
        )
    return (told,)


def advice_for(exc: OSError) -> str:
    """What to do about a failed read or write, for the reasons that have a fix of their own."""
    if exc.errno == errno.ELOOP:
        return "The config path is a loop of symbolic links: point --config at the real file."
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "The disk (or your quota) is full: free some space, then run malcapture again."
    if exc.errno == errno.EROFS:
        return "The file system is read-only (in Docker: a :ro mount): mount the config folder read-write."
    if exc.errno in (errno.EISDIR, errno.ENOTDIR):
        return f"A folder is in the way ({exc.filename or 'a path beside the config'}): move it aside."
    return WRITE_ADVICE


def save_issued(
    config: KometaConfig,
    tokens: TokenSet,
    creds: Credentials,
    lock_says: Callable[[str], None] | None = None,
    section: Section = MAL,
    planned: Plan | None = None,
) -> Saved:
    """save_tokens for tokens MyAnimeList has just issued: a failure keeps them in a file and on stdout.

    With `lock_says`, the config's lock is taken here (a wait is told through it); without, the caller holds it.
    """
    try:
        with lock.exclusive(config.path, lock_says) if lock_says else contextlib.nullcontext():
            return save_tokens(config, tokens, creds, section=section, planned=planned)
    except ConfigError as exc:
        block = config_block(creds, tokens, section)
        kept = keep_tokens(config.target.parent, block)
        where = f"They were written to {kept} and" if kept else "They are"
        raise TokensNotSaved(
            f"{section.title} issued tokens, but they could not be saved: {exc.what}",
            f"{where} printed on standard output as a {section.name}: block: "
            "paste it into Kometa's config.yml yourself. " + exc.advice,
            block,
        ) from None


def keep_unusable(folder: Path, exc: UnusableTokens) -> UnusableTokens:
    """MyAnimeList's answer kept in the tokens file (escaped), so that its new refresh token is not lost."""
    kept = keep_tokens(folder, f"# MyAnimeList's answer, with its broken characters escaped\n{exc.tokens}\n")
    where = f" Its answer was kept in {kept}." if kept else ""
    return UnusableTokens(exc.what + where, exc.advice, exc.tokens)


def keep_tokens(folder: Path, block: str) -> Path | None:
    """The issued tokens in a file of their own (0600): cron and systemd discard standard output."""
    name = f"malcapture-tokens-{time.strftime('%Y%m%d-%H%M%S')}.yml"
    for place in (folder, Path.home()):
        path = place / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(block)
        return path
    return None


def describe_changes(
    config: KometaConfig, text: str, edits: list[Edit], updates: dict[str, Any], section: Section = MAL
) -> tuple[str, ...]:
    """What a save changes, in words: the lines, the values added, a section appended."""
    name = section.name
    lines = _changed_lines(text, edits)
    span = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in lines)
    auth = ", ".join(updates.get("authorization", {}))
    told = []
    if name not in config.data:
        told.append(f"A new {name}: section was added at lines {span} of {config.path} (the file had none).")
        commented = re.search(rf"^[ \t]*#[ \t]*{name}:", config.text, re.MULTILINE)
        if commented:
            at = config.text.count("\n", 0, commented.start()) + 1
            told.append(f"Line {at} holds a commented-out `# {name}:`; Kometa reads the new section, not that one.")
        return tuple(told)
    told.append(f"Changed lines {span} of {config.path}: {name}.authorization ({auth}).")
    filled = [k for k in ("client_id", "client_secret") if k in updates]
    if filled:
        told.append("Filled in " + " and ".join(f"{name}.{k}" for k in filled) + " (the tokens belong to that app).")
    if section.spent in updates:
        told.append(f"Emptied {name}.{section.spent}: its code was spent, and Kometa would retry it and fail.")
    return tuple(told)


def _changed_lines(text: str, edits: list[Edit]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    shift = 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        start = edit.start + shift
        shift += len(edit.text) - (edit.end - edit.start)
        first = text.count("\n", 0, start) + 1
        last = first + edit.text.rstrip("\r\n").count("\n")
        if ranges and first <= ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], max(last, ranges[-1][1]))
        else:
            ranges.append((first, last))
    return ranges


def plan_updates(config: KometaConfig, tokens: TokenSet, creds: Credentials, section: Section = MAL) -> dict[str, Any]:
    """What changes, in Kometa's order; `""` empties a value."""
    values = config.section(section)
    found = values.get("authorization")
    auth: dict[str, Any] = found if isinstance(found, dict) else {}
    authorization = {k: v for k, v in tokens.as_mapping().items() if not is_placeholder(auth.get(k))}
    if config.data.get(section.name) is None:
        return {
            "client_id": creds.client_id,
            "client_secret": creds.client_secret or "",
            section.spent: "",
            "authorization": authorization,
        }
    updates: dict[str, Any] = {}
    for key, used in (("client_id", creds.client_id), ("client_secret", creds.client_secret)):
        current = values.get(key)
        if used and not is_placeholder(current) and (current is None or str(current).strip() != used):
            updates[key] = used
    spent = values.get(section.spent)
    if spent is not None and str(spent).strip() and not is_placeholder(spent):
        updates[section.spent] = ""  # its code is spent; Kometa would retry it and fail
    updates["authorization"] = authorization
    return updates


def verify(config: KometaConfig, text: str, edits: list[Edit], updates: Updates, section: Section = MAL) -> None:
    """Refuse to write a text that does not read back as the old data with `updates` applied."""
    expected = copy.deepcopy(config.data)
    found = expected.get(section.name)
    values: dict[str, Any] = found if isinstance(found, dict) else {}
    expected[section.name] = values
    for key, value in updates.items():
        if isinstance(value, Mapping):
            values[key] = {**(values[key] if isinstance(values.get(key), dict) else {}), **value}
        else:
            values[key] = None if value == "" else value
    if config.documents == 1 and _section_reads_back(config, text, edits, section.name, values):
        return
    try:
        reread = parse(config.path, text.encode("utf-8")).data
    except ConfigError:
        reread = None
    if reread != expected:
        raise ConfigError(
            f"malcapture could not change {config.path} safely: the result did not read back as intended "
            f"(please report this with the file's {section.name}: section). Nothing was written."
        )


def _section_reads_back(config: KometaConfig, text: str, edits: list[Edit], name: str, values: dict[str, Any]) -> bool:
    """Re-read just the new entry of the section, where that is enough (see readback.py)."""
    window = section_window(config.text, config.root, edits, name)
    if window is None:
        return False
    start, end = window
    try:
        part = parse(config.path, text[start : end + len(text) - len(config.text)].encode("utf-8"))
    except ConfigError:
        return False
    return part.data == {name: values} and not has_anchors(part.root)


def config_block(creds: Credentials, tokens: TokenSet, section: Section = MAL) -> str:
    """The whole section, ready to paste into config.yml (--print, and tokens that could not be saved)."""
    updates: dict[str, Any] = {
        "client_id": creds.client_id,
        "client_secret": creds.client_secret or "",
        section.spent: "",
        "authorization": tokens.as_mapping(),
    }
    return "\n".join([f"{section.name}:", *block_lines(updates, 2)]) + "\n"
