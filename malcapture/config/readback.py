"""Where a spliced config can be re-read in part: the changed section alone, when that proves the whole.

Before writing, the new text is parsed again and compared with what was intended. ruamel.yaml
takes about half a second for 5,000 lines, so when the edits all lie inside one top-level
entry (the section changed), only that entry is re-read. The text around it is then byte for byte the old text, which
parsed before, and a block-mapping entry that parses on its own cannot change how the lines after
it parse. The conditions below keep out what could: directives, more than one document, a
`...` end marker, a flow-style root, and anchors (other entries may alias them). Anything
else, and any doubt, falls back to re-reading the whole file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from malcapture.config.splice import Edit

UNUSUAL = re.compile(r"^(%|\.\.\.|---.*\S)", re.MULTILINE)  # a directive, an end marker, `--- value`


def section_window(text: str, root: MappingNode, edits: Sequence[Edit], name: str) -> tuple[int, int] | None:
    """The span of `text` that holds the whole entry `name:` and every edit, or None to re-read it all."""
    if root.flow_style or not root.value or UNUSUAL.search(text):
        return None
    keys = [k.value if isinstance(k, ScalarNode) else None for k, _ in root.value]
    if name not in keys:  # appended at the end
        at_end = all(e.start == e.end == len(text) for e in edits)
        return (len(text), len(text)) if at_end else None
    index = keys.index(name)
    key, value = root.value[index]
    if has_anchors(key) or has_anchors(value):
        return None
    start = _line_start(text, key.start_mark.index)
    end = _line_start(text, root.value[index + 1][0].start_mark.index) if index + 1 < len(root.value) else len(text)
    if start is None or end is None or not all(key.end_mark.index <= e.start and e.end <= end for e in edits):
        return None
    return start, end


def has_anchors(node: Node) -> bool:
    if getattr(node, "anchor", None):
        return True
    if isinstance(node, MappingNode):
        return any(has_anchors(k) or has_anchors(v) for k, v in node.value)
    if isinstance(node, SequenceNode):
        return any(has_anchors(item) for item in node.value)
    return False


def _line_start(text: str, index: int) -> int | None:
    """Where the line holding `index` starts, if only indentation comes before `index` on it."""
    start = text.rfind("\n", 0, index) + 1
    return start if not text[start:index].strip(" ") else None
