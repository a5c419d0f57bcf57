"""YAML read with line numbers, and with the duplicate keys PyYAML silently drops.

``yaml.safe_load`` keeps the last of two equal keys and forgets where anything
was written. Configuration checks need both: every mapping here is a list of
``Entry(key, value, line)`` in file order, duplicates included, where
``value`` is the constructed Python value (anything below a mapping that the
caller descends into stays a ``Node``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml


@dataclass
class Entry:
    key: object
    value: object
    line: int  # 1-based line of the key
    node: yaml.Node = field(repr=False)


MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlError(ValueError):
    def __init__(self, line: int | None, problem: str):
        super().__init__(problem)
        self.line = line
        self.problem = problem


class Document:
    """A parsed YAML document whose mappings can be read entry by entry."""

    def __init__(self, text: str):
        self._loader = yaml.SafeLoader(text)
        try:
            self.root = self._loader.get_single_node()
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            raise YamlError(mark.line + 1 if mark else None, getattr(err, "problem", None) or "invalid YAML") \
                from None

    def value(self, node: yaml.Node | None):
        if node is None:
            return None
        try:
            return self._loader.construct_object(node, deep=True)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None) or node.start_mark
            raise YamlError(mark.line + 1, getattr(err, "problem", None) or str(err)) from None

    @staticmethod
    def is_mapping(node: yaml.Node | None) -> bool:
        return isinstance(node, yaml.MappingNode)

    def entries(self, node: yaml.MappingNode) -> list[Entry]:
        """The mapping's entries in file order, duplicates included (values constructed)."""
        out = []
        for key_node, value_node in node.value:
            key = "<<" if key_node.tag == MERGE_TAG else self.value(key_node)
            out.append(Entry(key, self.value(value_node), key_node.start_mark.line + 1, value_node))
        return out

    def duplicates(self, node: yaml.Node | None = None, path: tuple = ()):
        """(path, key, first line, repeated line) of every key written twice in one mapping, anywhere."""
        node = self.root if node is None else node
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:
                yield from self.duplicates(item, path)
        if not isinstance(node, yaml.MappingNode):
            return
        seen: dict = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key in seen:
                    yield path, key, seen[key], line
                else:
                    seen[key] = line
                yield from self.duplicates(value_node, path + (key,))

    @staticmethod
    def line(node: yaml.Node) -> int:
        return node.start_mark.line + 1
