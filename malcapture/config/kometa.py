"""Kometa's config.yml, read: the bytes as they are, the YAML as Kometa reads it, its values resolved."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode

from malcapture.config.place import Place, is_blank
from malcapture.config.placeholders import env_name, is_placeholder, kometa_secrets, resolve
from malcapture.config.splice import entry
from malcapture.errors import ConfigError

BOM = b"\xef\xbb\xbf"
WRITE_ADVICE = (
    "Make the file and its folder writable for this user (`ls -l` shows owner and mode; in Docker, "
    "mount the config folder without :ro), or use --print to get the section without touching the file."
)


def default_path() -> Path:
    nested = Path("config/config.yml")
    return nested if nested.exists() else Path("config.yml")


@dataclass(frozen=True)
class KometaConfig:
    """A config.yml as read: its bytes, its text, its YAML nodes and data, and where it really is."""

    path: Path
    target: Path  # the real file, through symlinks
    raw: bytes = field(repr=False)
    text: str = field(repr=False)
    newline: str
    documents: int
    root: MappingNode = field(repr=False)
    data: dict[str, Any] = field(repr=False)

    @property
    def shown(self) -> Path:
        """The path as messages name it: absolute, as the user can find it from anywhere."""
        return self.path.absolute()

    def mapping(self, path: tuple[str, ...]) -> dict[str, Any] | None:
        """The settings at `path` (None where there are none); a value that is not settings is refused."""
        found: Any = self.data
        for depth, key in enumerate(path):
            found = found.get(key) if isinstance(found, dict) else None
            if found is not None and not isinstance(found, dict):
                raise ConfigError(
                    f"{'.'.join(path[: depth + 1])}: in {self.shown} is not a section of settings.",
                    "Kometa would refuse it too.",
                )
        return found if isinstance(found, dict) else None

    def setting(self, place: Place, key: str, env: Mapping[str, str], token: bool = False) -> str | None:
        """A value as Kometa would see it (placeholders resolved, blanks as None); `token`: under the
        section's tokens."""
        found: Any = self.mapping(place.path) or {}
        keys = place.token_path(key) if token else (key,)
        for part in keys:
            found = found.get(part) if isinstance(found, dict) else None
        if is_blank(found):
            return None
        text = found if isinstance(found, str) else self.written((*place.path, *keys)) or str(found)
        if is_placeholder(text):
            text = resolve(text, kometa_secrets(env, self.target.parent))
            if is_placeholder(text):
                raise ConfigError(
                    f"{place.dotted(*keys)} in {self.shown} is {found}, but {env_name(str(found))} is not set.",
                    f"Set it in the environment or in {self.target.parent / '.env'} (as Kometa reads it).",
                )
        return text.strip() or None

    def written(self, path: tuple[str, ...]) -> str | None:
        """The scalar at `path` as the file spells it: a PIN written `01234567` is not the number 1234567, nor
        `1234E567` infinity. None where the path leads elsewhere (through a merge, to a section)."""
        node: Node = self.root
        for key in path:
            found = entry(node, key) if isinstance(node, MappingNode) else None
            if found is None:
                return None
            node = found[1]
        return node.value if isinstance(node, ScalarNode) else None


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
            f"The config file {path.absolute()} does not exist{broken}.",
            "Point --config (or KOMETA_CONFIG) at Kometa's config.yml; without it malcapture looks for "
            "config/config.yml, then config.yml, in the current folder.",
        ) from None
    except IsADirectoryError:
        inside = path / "config.yml"
        advice = f"Pass {inside}." if inside.is_file() else "It holds no config.yml: pass Kometa's config.yml itself."
        raise ConfigError(f"{path} is a folder, not a config file.", advice) from None
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


def refuse_merged_section(config: KometaConfig, name: str) -> None:
    """A top-level section that exists only through a merge key cannot be changed on its own."""
    own = {key.value for key, _ in config.root.value if isinstance(key, Node)}
    if name in config.data and name not in own:
        merge = next((k for k, _ in config.root.value if getattr(k, "value", None) == "<<"), None)
        line = f" (line {merge.start_mark.line + 1})" if merge is not None else ""
        raise ConfigError(
            f"{config.shown} has no {name}: section of its own: it comes from a merge key{line}, "
            "so changing it would change the section it is merged from.",
            f"Write a {name}: section of its own into the file (it overrides the merged one), "
            "then run malcapture again.",
        )


def _position(lines: list[str], line: int, column: int) -> tuple[int, int]:
    """A mark as a place on a line that exists: the end of the file is the end of its last line."""
    if line >= len(lines):
        return len(lines) - 1, len(lines[-1])
    return line, column


def snippet(text: str, first: int, line: int, column: int) -> str:
    """Lines `first` to `line`, numbered, with a caret under `column` of the last (as editors show it)."""
    lines = text.splitlines()
    width = len(str(line + 1))
    shown = [f"  {n + 1:>{width}} | {lines[n]}" for n in range(first, line + 1)]
    return "\n".join([*shown, f"  {'':>{width}} | {' ' * column}^"])


def _invalid(path: Path, text: str, exc: MarkedYAMLError) -> ConfigError:
    problem = exc.problem or ""
    duplicate = re.match(r'found duplicate key "(.*?)" with value', problem)
    mark, start = exc.problem_mark or exc.context_mark, exc.context_mark
    lines = text.splitlines()
    if mark is None or not lines:
        return ConfigError(f"{path} is not valid YAML: {problem}.", "Kometa would refuse it too.")
    line, column = _position(lines, mark.line, mark.column)
    where = "the end of the file" if mark.line >= len(lines) else f"line {line + 1}, column {column + 1}"
    if duplicate:
        first = start.line + 1 if start else "?"
        return ConfigError(
            f"{path} has the key {duplicate.group(1)!r} twice ({where}; first at line {first}).",
            "Kometa refuses such a file too: merge the two into one.",
        )
    if start is not None and start.line < line - 2:  # e.g. where an unclosed quote or bracket opened
        at, col = _position(lines, start.line, start.column)
        shown = f"{snippet(text, max(0, at - 1), at, col)}\n  …\n{snippet(text, line - 1, line, column)}"
    else:
        opened = start.line if start is not None and start.line < line else line - 1
        shown = snippet(text, max(0, opened), line, column)
    advice = "YAML does not allow tabs for indentation: use spaces. " if "\\t" in problem or "\t" in problem else ""
    if line > 0:
        advice += "The mistake may be at the end of the line before (an unclosed quote or bracket). "
    return ConfigError(
        f"{path} is not valid YAML at {where}: {problem}.\n{shown}\n", advice + "Kometa would refuse it too."
    )


def check_writable(config: KometaConfig) -> None:
    """The file must be writable. Its folder need not be: then the file is written in place, without a backup."""
    if not os.access(config.target, os.W_OK):
        raise ConfigError(f"The config file {config.shown} is not writable.", WRITE_ADVICE)


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
