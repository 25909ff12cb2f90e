"""A Compose file's YAML, read as Compose reads it and bounded before anything is built
from it: YAML 1.2's scalars, no key given twice in one mapping, no alias inside its own
anchor, nesting at most :data:`MAX_DEPTH` deep, and aliases that expand to at most
:data:`ALIAS_FLOOR` nodes (or :data:`ALIAS_FACTOR` times the nodes written, for a large
file). Everything else is PyYAML's safe loading.

PyYAML shares an anchored value among its aliases, so a file of a few hundred bytes can
stand for billions of nodes ("billion laughs"), which the interpolation and merge steps
would then copy one by one. Compose (go-yaml) refuses such a file ("document contains
excessive aliasing"); here the composed node graph is measured, without expanding it,
before any value is constructed.

Override files' ``!reset`` and ``!override`` tags are taken off the node graph before any
value is constructed too: a ``!reset`` value is dropped, an ``!override`` one kept as if
untagged, and the key path of each is handed to the caller, who clears that path from
what the file overrides (as Compose does).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..errors import ComposeError

# A Compose file nests about six levels deep; the bound keeps PyYAML's recursive composer
# and our own walks far from Python's recursion limit.
MAX_DEPTH = 64
# go-yaml lets about 400,000 node decodes come from aliases; Python copies a node far more
# slowly, so the budget here is smaller: ample for anchors of shared service settings.
ALIAS_FLOOR = 10_000
ALIAS_FACTOR = 10
MERGE_TAG = "tag:yaml.org,2002:merge"
RESET, OVERRIDE = "!reset", "!override"


class ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it (YAML 1.2's scalars: ``yes``/``no``/``on``/``off`` stay
    strings and ``22:22`` is not a base-60 number), checked as the module says."""

    def __init__(self, stream: str, file: Path):
        super().__init__(stream)
        self.file = file
        self.depth = 0
        self.written = 0  # nodes spelled out in the file (an alias is not one)
        self.replaced: list[tuple[object, ...]] = []  # key paths tagged !reset or !override

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
                raise ComposeError(
                    f"{self.file}: line {line}: the YAML nests more than {MAX_DEPTH} levels deep; a Compose file "
                    "needs far fewer"
                )
            if not self.check_event(yaml.AliasEvent):
                self.written += 1
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def flatten_mapping(self, node: MappingNode) -> None:
        """Merge keys as YAML and Compose define them: the mapping's own keys win, then the
        merged mappings in their order. (PyYAML's own, in 6.0.4, lets a later merged
        mapping win where two keys are equal strings but not one object.)"""
        merged: list[tuple[Node, Node]] = []
        own: list[tuple[Node, Node]] = []
        for key, value in node.value:
            if key.tag != MERGE_TAG:
                if key.tag == "tag:yaml.org,2002:value":
                    key.tag = "tag:yaml.org,2002:str"
                own.append((key, value))
                continue
            for source in value.value if isinstance(value, SequenceNode) else [value]:
                if not isinstance(source, MappingNode):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping", node.start_mark,
                        f"expected a mapping or a list of mappings to merge, but found {source.id}", source.start_mark,
                    )  # fmt: skip
                self.flatten_mapping(source)
                merged += source.value
        seen: set[object] = set()
        first = []
        for key, value in merged:
            identity = _hashable(self.key(key)) if isinstance(key, ScalarNode) else id(key)
            if identity not in seen:
                seen.add(identity)
                first.append((key, value))
        node.value = first + own

    def key(self, key: ScalarNode) -> object:
        """A scalar key's value, as the mapping will hold it."""
        try:
            return self.construct_object(key)
        except yaml.YAMLError:
            return key.value

    def compose_document(self) -> Node:
        self.get_event()  # type: ignore[no-untyped-call]  # the document's start
        node = self.compose_node(None, None)  # type: ignore[arg-type]  # the root has no index
        self.get_event()  # type: ignore[no-untyped-call]  # and its end
        if node is None:
            raise ComposeError(f"{self.file}: an empty YAML document")
        anchors = {id(anchored): name for name, anchored in self.anchors.items()}
        self.anchors = {}
        _Walk(self, anchors).check(node)
        self.replaced = _Tags(self).paths(node)
        return node


ComposeLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
ComposeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)


def read_yaml(file: Path, replaced: list[tuple[object, ...]] | None = None) -> Any:
    """The one YAML document of ``file`` (None when empty), or a :class:`ComposeError`
    naming the file; the key paths of its ``!reset``/``!override`` values are added to
    ``replaced``."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ComposeError(f"{file}: not a text file in UTF-8 (byte {exc.start}): a Compose file is YAML") from None
    except OSError as exc:
        raise ComposeError(f"{file}: cannot be read: {exc.strerror}") from None
    loader = ComposeLoader(text, file)
    try:
        data = loader.get_single_data()
        if replaced is not None:
            replaced.extend(loader.replaced)
        return data
    except yaml.YAMLError as exc:
        raise ComposeError(f"{file}: not valid YAML: {exc}") from None
    finally:
        loader.dispose()


class _Tags:
    """The ``!reset`` and ``!override`` tags taken off a node graph (see the module). An
    anchored node is gone through once; where an alias repeats it, its paths are repeated
    below the alias's path."""

    def __init__(self, loader: ComposeLoader):
        self.loader = loader
        self.found: dict[int, list[tuple[object, ...]]] = {}  # by id(node): paths below it
        self.tags: dict[int, str] = {}  # by id(node): an !override tag taken off

    def paths(self, node: Node) -> list[tuple[object, ...]]:
        if id(node) in self.found:
            return self.found[id(node)]
        below: list[tuple[object, ...]] = []
        self.found[id(node)] = below
        if isinstance(node, MappingNode):
            kept = []
            for key, value in node.value:
                step: tuple[object, ...] = ()
                if key.tag != MERGE_TAG:  # a merged mapping's keys are the mapping's own
                    step = (self.loader.key(key) if isinstance(key, ScalarNode) else "?",)
                if self._tagged(value, step, below):
                    continue
                below += [(*step, *path) for path in self.paths(value)]
                kept.append((key, value))
            node.value = kept
        elif isinstance(node, SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                if not self._tagged(item, (i,), below):
                    below += [(i, *path) for path in self.paths(item)]
                    items.append(item)
            node.value = items
        return below

    def _tagged(self, node: Node, step: tuple[object, ...], below: list[tuple[object, ...]]) -> bool:
        """Whether ``node`` is a ``!reset`` one, to be dropped; an ``!override`` one loses its tag."""
        tag = self.tags.get(id(node), node.tag)
        if tag not in (RESET, OVERRIDE):
            return False
        below.append(step)
        if tag == RESET:
            return True
        self.tags[id(node)] = tag
        if isinstance(node, ScalarNode):
            implicit = (node.style is None, node.style is not None)  # as if written plain or quoted
            node.tag = self.loader.resolve(ScalarNode, node.value, implicit)  # type: ignore[no-untyped-call]
        else:
            node.tag = "tag:yaml.org,2002:map" if isinstance(node, MappingNode) else "tag:yaml.org,2002:seq"
        return False


class _Walk:
    """One pass over a composed node graph, each node once (an anchored one where it is
    written: the walk goes in document order): its size with every alias expanded (capped
    just past the budget), a cycle through an alias, and a key given twice."""

    def __init__(self, loader: ComposeLoader, anchors: dict[int, str]):
        self.loader, self.anchors = loader, anchors
        self.limit = max(ALIAS_FLOOR, ALIAS_FACTOR * loader.written)
        self.sizes: dict[int, int] = {}  # by id(node), when done
        self.open: set[int] = set()  # the nodes being walked: an alias to one of them is a cycle

    def check(self, root: Node) -> None:
        stack: list[tuple[Node, str, bool]] = [(root, "", False)]
        while stack:
            node, path, leaving = stack.pop()
            if leaving:
                children = self._children(node, path, check=False)
                total = 1 + sum(self.sizes[id(child)] for child, _ in children)
                self.sizes[id(node)] = min(total, self.limit + 1)
                self.open.discard(id(node))
                continue
            if id(node) in self.sizes:
                continue
            self.open.add(id(node))
            stack.append((node, path, True))
            for child, at in reversed(self._children(node, path, check=True)):
                if id(child) in self.open:
                    self._cycle(child, at)
                stack.append((child, at, False))
        if self.sizes[id(root)] > self.limit:
            self._excessive()

    def _children(self, node: Node, path: str, check: bool) -> list[tuple[Node, str]]:
        if isinstance(node, SequenceNode):
            return [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        if not isinstance(node, MappingNode):
            return []
        children: list[tuple[Node, str]] = []
        seen: dict[object, Node] = {}
        for key, value in node.value:
            name = self._key(key)
            at = f"{path}.{name}" if path else str(name)
            if check and key.tag != MERGE_TAG and isinstance(key, ScalarNode):
                first = seen.setdefault(_hashable(name), key)
                if first is not key:
                    raise ComposeError(
                        f"{self.loader.file}: {at} is given twice (lines {first.start_mark.line + 1} and "
                        f"{key.start_mark.line + 1}): Compose refuses a key repeated in one mapping; keep one"
                    )
            children += [(key, f"{at} (key)"), (value, at)]
        return children

    def _key(self, key: Node) -> object:
        if not isinstance(key, ScalarNode) or key.tag == MERGE_TAG:
            return key.value if isinstance(key, ScalarNode) else "?"
        return self.loader.key(key)

    def _cycle(self, node: Node, at: str) -> None:
        name = self.anchors.get(id(node), "?")
        raise ComposeError(
            f"{self.loader.file}: {at}: the alias *{name} is inside the value of its own anchor &{name} (line "
            f"{node.start_mark.line + 1}): it would expand without end; alias the anchor only outside its value"
        )

    def _excessive(self) -> None:
        # The first anchor (in the file's order) too big on its own is where to look.
        over = [name for id_, name in self.anchors.items() if self.sizes.get(id_, 0) > self.limit]
        alone = f" (the anchor &{over[0]} alone to more than {self.limit:,})" if over else ""
        raise ComposeError(
            f"{self.loader.file}: excessive aliasing: its YAML aliases expand to more than {self.limit:,} nodes "
            f"from {self.loader.written:,} written{alone}; Compose refuses such a file too: write the repeated "
            "parts out or anchor smaller pieces"
        )


def _hashable(value: object) -> object:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
