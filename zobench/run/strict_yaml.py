"""Suite YAML read strictly: safe tags only, no duplicate keys, no anchors or aliases.

``yaml.safe_load`` already refuses ``!!python`` tags, but it keeps the last of two equal
keys without a word (a suite with ``lr`` twice runs one of them) and expands aliases, so a
few lines of "billion laughs" become gigabytes once anything prints the value. A suite is
a short hand-written file that needs neither, so both are refused with the line they are on.
Usage: ``raw = strict_load(text)`` (raises ``yaml.YAMLError`` subclasses, as safe_load does).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError

from zobench.paths import shorten


class StrictLoader(yaml.SafeLoader):
    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConstructorError(None, None, f"aliases (*{shorten(event.anchor, 40)}) are not allowed in a suite",
                                   event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # noqa: ANN001
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: PyYAML reports it below
                duplicate = False
            if duplicate:
                raise ConstructorError(None, None, f"duplicate key {shorten(key, 60)}", key_node.start_mark)
            if not isinstance(key, (list, dict)):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def strict_load(text: str) -> Any:
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
