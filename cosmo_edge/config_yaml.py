"""YAML text to plain data for the config loader, every problem reported with its line and key path.

``cosmo_edge.config`` validates the data this module builds. Loading is done in three steps, so
that no YAML input can raise anything but ``ConfigError``:

1. ``compose`` first walks the parser's events (an iterative state machine) and refuses nesting
   deeper than ``MAX_NESTING`` before PyYAML's recursive composer could overflow the stack, then
   builds the node tree, whose nodes keep their line;
2. ``build`` turns the node tree into dicts, lists and scalars itself instead of ``safe_load``:
   each scalar goes through PyYAML's safe constructor on its own, so a bad tagged value (``!!int
   x``, ``!!timestamp x``) becomes an issue on its line, and the walk refuses what the config
   model cannot hold (complex keys, collection tags other than map and seq, an alias inside the
   node it names, nesting deeper than ``MAX_NESTING`` through aliases, more than ``MAX_NODES``
   values once aliases are expanded). Merge keys (``<<: *defaults``) work as in ``safe_load``;
   repeated keys, which PyYAML keeps the last of silently, are issues too;
3. ``locate`` maps a pydantic error location back to a line.
"""

import logging
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

import yaml

logger = logging.getLogger(__name__)

MAX_NESTING = 64  # levels of lists and mappings; the config model has fewer than 6
MAX_NODES = 100_000  # values after alias expansion (guards validation against alias bombs)
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_CONSTRUCT_ERRORS = (yaml.YAMLError, ValueError, TypeError, AttributeError, OverflowError)


class ConfigIssue(NamedTuple):
    """One problem: 1-based ``line`` (None when unknown), the key ``path`` and the ``message``."""

    line: Optional[int]
    path: str
    message: str


class ConfigError(ValueError):
    """The config file is unreadable or invalid; ``issues`` lists every problem found."""

    def __init__(self, source: str, issues: List[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__("\n".join(format_issue(source, issue) for issue in issues))


def format_issue(source: str, issue: ConfigIssue) -> str:
    """``FILE:LINE: key.path: message`` (the check-config output format)."""
    line = issue.line if issue.line is not None else "?"
    return f"{source}:{line}: {issue.path or '(top level)'}: {issue.message}"


def _child(path: str, key: Union[int, str]) -> str:
    """``path`` extended by a mapping key or a list index."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _check_nesting(text: str, source: str) -> None:
    """ConfigError at the first list or mapping nested deeper than ``MAX_NESTING`` (raw events)."""
    stack: List[List[Any]] = []  # per open collection: [is_mapping, current key or index, expecting key]
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            stack.pop()
            continue
        if not isinstance(event, yaml.NodeEvent):
            continue
        if stack and stack[-1][0]:
            if stack[-1][2]:
                value = getattr(event, "value", None)
                stack[-1][1] = value if isinstance(event, yaml.ScalarEvent) else "?"
            stack[-1][2] = not stack[-1][2]
        elif stack:
            stack[-1][1] += 1
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_NESTING:
                path = ""
                for _, key, _ in stack:
                    path = _child(path, key)
                message = f"nested deeper than {MAX_NESTING} levels"
                raise ConfigError(source, [ConfigIssue(event.start_mark.line + 1, path, message)])
            stack.append([isinstance(event, yaml.MappingStartEvent), -1, True])


def compose(text: str, source: str) -> Any:
    """The YAML node tree (with line marks), or ConfigError for a syntax error or deep nesting."""
    try:
        _check_nesting(text, source)
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [ConfigIssue(line, "", f"YAML syntax: {problem}")]) from exc


class _Builder:
    """Plain data from a node tree, collecting issues (see the module docstring, step 2)."""

    def __init__(self) -> None:
        self.issues: List[ConfigIssue] = []
        self.failed = False  # some value could not be built: validating the rest would mislead
        self._scalars = yaml.SafeLoader("")
        # id(node) -> (value, values inside it, levels inside it), so an alias reuses its anchor's
        self._done: Dict[int, Tuple[Any, int, int]] = {}
        self._open: Set[int] = set()

    def _fail(self, node: Any, path: str, message: str, at_line: int = 0) -> Tuple[Any, int, int]:
        """Record an issue on ``node``'s line, or on ``at_line`` when later (an alias to an anchor)."""
        self.failed = True
        self.issues.append(ConfigIssue(max(node.start_mark.line + 1, at_line), path, message))
        return None, 1, 0

    def build(self, node: Any, path: str, depth: int = 0, at_line: int = 0) -> Tuple[Any, int, int]:
        """``(value, values inside it, levels of lists and mappings inside it)`` of ``node``.

        ``at_line``: the line of the key or list that holds ``node``, where an alias to it is.
        """
        done = self._done.get(id(node))
        if done is not None and depth + done[2] <= MAX_NESTING:
            return done
        if id(node) in self._open:
            return self._fail(node, path, "an alias refers to a node that contains it (recursive)", at_line)
        if done is not None or (depth >= MAX_NESTING and not isinstance(node, yaml.ScalarNode)):
            message = f"nested deeper than {MAX_NESTING} levels (through aliases)"
            return self._fail(node, path, message, at_line)
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode) and node.tag == _MAP_TAG:
                result = self._mapping(node, path, depth)
            elif isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG:
                line = node.start_mark.line + 1
                items = [self.build(v, _child(path, i), depth + 1, line) for i, v in enumerate(node.value)]
                count = 1 + sum(n for _, n, _ in items)
                result = [v for v, _, _ in items], count, 1 + max([h for _, _, h in items], default=0)
            elif isinstance(node, yaml.ScalarNode):
                result = self._scalar(node, path)
            else:
                message = f"{_short(node.tag)} is not supported for a list or mapping"
                result = self._fail(node, path, message, at_line)
        finally:
            self._open.discard(id(node))
        if result[1] > MAX_NODES:
            message = f"more than {MAX_NODES} values once aliases are expanded"
            result = self._fail(node, path, message, at_line)
        self._done[id(node)] = result
        return result

    def _scalar(self, node: Any, path: str) -> Tuple[Any, int, int]:
        try:
            return self._scalars.construct_object(node), 1, 0
        except _CONSTRUCT_ERRORS as exc:  # ValueError for !!int x, AttributeError for !!timestamp x
            problem = f": {exc.problem}" if isinstance(exc, yaml.MarkedYAMLError) and exc.problem else ""
            return self._fail(node, path, f"cannot read {node.value!r} as {_short(node.tag)}{problem}")

    def _mapping(self, node: Any, path: str, depth: int) -> Tuple[Dict[Any, Any], int, int]:
        """Merged entries first (earlier sources win), then the node's own keys, which override them."""
        merged: Dict[Any, Any] = {}
        own: Dict[Any, Any] = {}
        first_line: Dict[str, int] = {}
        count = height = 1
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                at_line = key_node.start_mark.line + 1
                inside, levels = self._merge(value_node, _child(path, "<<"), depth, merged, at_line)
                count, height = count + inside, max(height, 1 + levels)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._fail(key_node, _child(path, "?"), "a key must be a plain value, not a list or mapping")
                continue
            name = str(key_node.value)
            child = _child(path, name)
            line = key_node.start_mark.line + 1
            if name in first_line:
                message = f"duplicate key (first on line {first_line[name]})"
                self.issues.append(ConfigIssue(line, child, message))
            first_line.setdefault(name, line)
            key = self._scalar(key_node, child)[0]
            value, inside, levels = self.build(value_node, child, depth + 1, line)
            own[key] = value
            count, height = count + inside, max(height, 1 + levels)
        merged.update(own)
        return merged, count, height

    def _merge(self, node: Any, path: str, depth: int, into: Dict[Any, Any], at_line: int) -> Tuple[int, int]:
        """Add the entries of a ``<<`` value (a mapping or a list of them) that ``into`` lacks.

        Returns the values and the levels inside the merged mappings.
        """
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        count = height = 0
        for index, source in enumerate(sources):
            where = _child(path, index) if isinstance(node, yaml.SequenceNode) else path
            if not isinstance(source, yaml.MappingNode):
                self._fail(source, where, "a merge key (<<) needs a mapping or a list of mappings", at_line)
                continue
            value, inside, levels = self.build(source, where, depth, at_line)
            count, height = count + inside, max(height, levels - 1)
            if isinstance(value, dict):
                for key, item in value.items():
                    into.setdefault(key, item)
        return count, height


def _short(tag: str) -> str:
    """``!!int`` for ``tag:yaml.org,2002:int``; other tags as written."""
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag


def build(root: Any) -> Tuple[Any, List[ConfigIssue], bool]:
    """Plain data of the node tree ``root``: ``(data, issues, complete)``.

    ``complete`` is False when some value could not be built (``data`` holds None in its place),
    so validating ``data`` would only add misleading issues.
    """
    builder = _Builder()
    data = builder.build(root, "")[0]
    return data, builder.issues, not builder.failed


def locate(root: Any, loc: Sequence[Union[int, str]]) -> Tuple[Optional[int], str]:
    """Line and display path of a pydantic error location in the YAML node tree.

    Discriminator tags pydantic inserts into the location (``sensors.0.imu_serial.baud``) are
    dropped; a missing key gets the line of its parent key.
    """
    node, line, path = root, (root.start_mark.line + 1 if root is not None else None), ""
    for item in loc:
        if isinstance(node, yaml.SequenceNode) and isinstance(item, int) and 0 <= item < len(node.value):
            node = node.value[item]
            line, path = node.start_mark.line + 1, f"{path}[{item}]"
            continue
        if isinstance(node, yaml.MappingNode):
            entries = {str(k.value): (k, v) for k, v in node.value}
            if str(item) in entries:
                key, node = entries[str(item)]
                line, path = key.start_mark.line + 1, f"{path}.{item}" if path else str(item)
                continue
            tag = entries.get("type")
            if tag is not None and str(tag[1].value) == str(item):
                continue  # discriminated-union tag, not a key
        path = f"{path}.{item}" if path else str(item)
        node = None
    return line, path
