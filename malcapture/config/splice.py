"""Rewrite the values of one section of a YAML text in place, leaving every other byte as it was.

ruamel.yaml's composed nodes say where each key and value sits; we replace just those spans,
insert missing keys as lines in the file's own indentation and line ending, and append a
missing section in Kometa's order. A flow-style mapping we must change is rewritten whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

from malcapture.errors import ConfigError

Value = str | int
Updates = Mapping[str, "Value | Updates"]

PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+=~-]*")
YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false"}  # not strings to older parsers
STR_TAG = "tag:yaml.org,2002:str"
ALIAS = re.compile(r"[ \t]*(\*[^\s,\[\]{}]+)")
_resolver = VersionedResolver()


def render(value: Value, style: str | None = None) -> str:
    """A YAML scalar that reads back as exactly `value`, in the original's quoting where possible."""
    if isinstance(value, int):
        return str(value)
    if style == "'" and value.isprintable():
        return "'" + value.replace("'", "''") + "'"
    if (
        style != '"'
        and PLAIN.fullmatch(value)
        and value.lower() not in YAML11_WORDS
        and _resolver.resolve(ScalarNode, value, (True, False)) == STR_TAG
    ):
        return value
    return double_quoted(value)


def double_quoted(value: str) -> str:
    out = []
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF):
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def block_lines(updates: Updates, indent: int, step: int = 2) -> list[str]:
    lines = []
    for name, new in updates.items():
        if isinstance(new, Mapping):
            lines += [" " * indent + f"{name}:", *block_lines(new, indent + step, step)]
        else:
            lines.append(" " * indent + f"{name}:" + (f" {render(new)}" if new != "" else ""))
    return lines


class Edit(NamedTuple):
    start: int
    end: int
    text: str


def apply(text: str, edits: list[Edit]) -> str:
    pieces, cursor = [], 0
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        if edit.start < cursor:
            raise ConfigError("malcapture could not place its changes without overlapping (a bug).")
        pieces += [text[cursor : edit.start], edit.text]
        cursor = edit.end
    return "".join(pieces) + text[cursor:]


def entry(mapping: MappingNode, name: str) -> tuple[Node, Node] | None:
    return next(((k, v) for k, v in mapping.value if isinstance(k, ScalarNode) and k.value == name), None)


def is_empty(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.value == "" and not node.style


class Splicer:
    def __init__(self, text: str, newline: str, single_document: bool) -> None:
        self.text = text
        self.nl = newline
        self.single_document = single_document

    def section(self, root: MappingNode, name: str, updates: Updates) -> list[Edit]:
        found = entry(root, name)
        if found is None:
            return [self.append_section(root, name, updates)]
        return self.mapping(name, *found, updates)

    def mapping(self, path: str, key: Node, value: Node, updates: Updates) -> list[Edit]:
        """Set `updates` inside the mapping `key: value`, whatever shape it has now."""
        self.check_not_alias(path, key, value)
        self.check_anchor(path, value)
        step = 2
        child_indent = key.start_mark.column + step
        if isinstance(value, MappingNode) and value.flow_style:
            return [Edit(value.start_mark.index, value.end_mark.index, self.flow(value, updates))]
        if isinstance(value, MappingNode) and value.value:
            return self.block_mapping(path, value, updates)
        if isinstance(value, ScalarNode):  # empty, `~`, or a stray string such as `(redacted)`
            edits = [] if is_empty(value) else [self.scalar(path, key, value, "")]
            anchor = self.colon_end(key) - 1 if is_empty(value) else self.last_content(key, value)
            return [*edits, self.insert_after(anchor, block_lines(updates, child_indent, step))]
        raise ConfigError(f"{path} in the config is a list, but Kometa expects settings there.")

    def block_mapping(self, path: str, node: MappingNode, updates: Updates) -> list[Edit]:
        indent = node.value[0][0].start_mark.column
        edits: list[Edit] = []
        missing: dict[str, Value | Updates] = {}
        for name, new in updates.items():
            found = entry(node, name)
            if found is None:
                if new != "":
                    missing[name] = new
            elif isinstance(new, Mapping):
                edits += self.mapping(f"{path}.{name}", *found, new)
            else:
                edits += [self.scalar(f"{path}.{name}", *found, new)]
        if missing:
            last_key, last_value = node.value[-1]
            edits.append(self.insert_after(self.last_content(last_key, last_value), block_lines(missing, indent)))
        return [e for e in edits if not (e.start == e.end and not e.text)]

    def scalar(self, path: str, key: Node, node: Node, new: Value) -> Edit:
        if node.start_mark.index < key.end_mark.index:  # `key: *name`: the new value replaces the alias
            return self.replace_alias(path, key, new)
        self.check_anchor(path, node)
        if not isinstance(node, ScalarNode):
            what = "a list (`[…]` is a list in YAML)" if isinstance(node, SequenceNode) else "settings"
            raise ConfigError(
                f"{path} in the config (line {node.start_mark.line + 1}) holds {what}, "
                "but Kometa expects a single value there.",
                "Write the value alone (quote it if it starts with [ or {), then run malcapture again.",
            )
        colon = self.colon_end(key)
        if is_empty(node):
            return self.fill_empty(colon, new)
        start, end = node.start_mark.index, node.end_mark.index
        breaks = len(self.text[start:end]) - len(self.text[start:end].rstrip("\r\n"))  # block scalars
        if new == "":
            while start > colon and self.text[start - 1] in " \t":
                start -= 1
            return Edit(start, end - breaks, "")
        style = node.style if node.style in ("'", '"') else None
        return Edit(start, end - breaks, render(new, style))

    def fill_empty(self, colon: int, new: Value) -> Edit:
        """`key:` → `key: value`, eating padding so an aligned comment keeps its column if it can."""
        if new == "":
            return Edit(colon, colon, "")
        inserted = " " + render(new)
        run = len(self.text[colon:]) - len(self.text[colon:].lstrip(" "))
        before_comment = self.text[colon + run : colon + run + 1] == "#"
        eat = min(run - 1 if before_comment else run, len(inserted))
        return Edit(colon, colon + max(eat, 0), inserted)

    def flow(self, node: Node | None, updates: Updates) -> str:
        parts, done = [], set()
        for k, v in node.value if isinstance(node, MappingNode) else []:
            name = k.value if isinstance(k, ScalarNode) else None
            new = updates.get(name) if name is not None else None
            if name is not None and name in updates and new is not None:
                done.add(name)
                shown = self.flow(v, new) if isinstance(new, Mapping) else self.flow_scalar(new, v)
            else:
                shown = self.slice(v) or "null"
            parts.append(f"{self.slice(k)}: {shown}")
        for name, new in updates.items():
            if name not in done and new != "":
                shown = self.flow(None, new) if isinstance(new, Mapping) else render(new)
                parts.append(f"{name}: {shown}")
        return "{" + ", ".join(parts) + "}"

    def flow_scalar(self, new: Value, old: Node) -> str:
        if new == "":
            return "null"
        return render(new, old.style if isinstance(old, ScalarNode) and old.style in ("'", '"') else None)

    def append_section(self, root: MappingNode, name: str, updates: Updates) -> Edit:
        indent = root.value[0][0].start_mark.column if root.value else 0
        lines = [" " * indent + f"{name}:", *block_lines(updates, indent + 2)]
        if self.single_document or not root.value:
            end = len(self.text)
            if not self.text or self.text.endswith("\n"):
                return Edit(end, end, "".join(line + self.nl for line in lines))
            return Edit(end, end, self.nl + self.nl.join(lines))
        last_key, last_value = root.value[-1]
        return self.insert_after(self.last_content(last_key, last_value), lines)

    def insert_after(self, position: int, lines: list[str]) -> Edit:
        """New lines after the line that holds `position`, in the file's line ending."""
        line_end = self.text.find("\n", position)
        if line_end == -1:
            return Edit(len(self.text), len(self.text), self.nl + self.nl.join(lines))
        return Edit(line_end + 1, line_end + 1, "".join(line + self.nl for line in lines))

    def last_content(self, key: Node, value: Node) -> int:
        """An index on the last line that holds this entry's content (not its trailing comments)."""
        if value.start_mark.index < key.end_mark.index:  # `key: *name`: the alias is the content
            found = ALIAS.match(self.text, self.colon_end(key))
            return found.end(1) - 1 if found else self.colon_end(key) - 1
        if isinstance(value, (MappingNode, SequenceNode)) and not value.flow_style and value.value:
            last = value.value[-1]
            return self.last_content(*last) if isinstance(value, MappingNode) else self.last_content(key, last)
        if is_empty(value):
            return self.colon_end(key) - 1
        end: int = value.end_mark.index
        while end > value.start_mark.index + 1 and self.text[end - 1] in "\r\n":
            end -= 1
        return end - 1

    def colon_end(self, key: Node) -> int:
        index: int = key.end_mark.index
        while index < len(self.text) and self.text[index] in " \t":
            index += 1
        if self.text[index : index + 1] != ":":
            raise ConfigError(f"malcapture cannot edit the key at line {key.start_mark.line + 1} (not `key: value`).")
        return index + 1

    def replace_alias(self, path: str, key: Node, new: Value) -> Edit:
        colon = self.colon_end(key)
        found = ALIAS.match(self.text, colon)
        if found is None:
            raise ConfigError(f"malcapture cannot edit the alias {path} at line {key.start_mark.line + 1}.")
        if new == "":
            return Edit(colon, found.end(1), "")
        return Edit(found.start(1), found.end(1), render(new))

    def check_anchor(self, path: str, node: Node) -> None:
        """A value that other places use through its anchor cannot change without changing them too."""
        anchor = getattr(node, "anchor", None)
        if anchor and re.search(rf"\*{re.escape(anchor)}(?![^\s,\[\]{{}}])", self.text):
            raise ConfigError(
                f"{path} (line {node.start_mark.line + 1}, column {node.start_mark.column + 1}) carries the "
                f"anchor &{anchor}, and *{anchor} uses it elsewhere: changing it here would change that too.",
                f"Write the value out in full where *{anchor} is used (or drop the anchor), then run malcapture again.",
            )

    def check_not_alias(self, path: str, key: Node, value: Node) -> None:
        if value.start_mark.index < key.end_mark.index:
            raise ConfigError(
                f"{path} in the config (line {key.start_mark.line + 1}) is an alias (*name) of settings "
                "defined elsewhere: changing them would change the other place too.",
                "Write the settings out in place so that malcapture can change only these.",
            )

    def slice(self, node: Node) -> str:
        return self.text[node.start_mark.index : node.end_mark.index].strip()
