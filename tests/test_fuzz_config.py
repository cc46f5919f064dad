"""Fuzzing the config loader (``cosmo_edge.config``): a valid model or a ``ConfigError``, nothing else.

Inputs are the shipped configs with values replaced, keys added or removed (dumped back to YAML),
the shipped text with character edits, and arbitrary bytes in a file. Properties: only
``DaemonConfig`` or ``ConfigError`` comes out; every issue has a line inside the file (or none), a
key path and a one-line message; an accepted config survives a dump/validate round trip and keeps
the cross-field rules (one sensor per modality, CURVE for a non-loopback endpoint).
"""

import copy
import pathlib
import tempfile
from typing import Any, List

import pytest
import yaml
from fuzz_support import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from cosmo_edge.config import ConfigError, DaemonConfig, format_issue, load_config, parse_config

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "cosmo_edge" / "configs"
BASE_TEXTS = [CONFIG_DIR.joinpath(name).read_text(encoding="utf-8") for name in ("sim.yaml", "jetson.yaml")]
BASE_DATA = [yaml.safe_load(text) for text in BASE_TEXTS]

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(
        ["sim:imu", "sim:nope", "tcp://0.0.0.0:5556", "ipc:///run/x.sock", "tcp://[::1]:1", "auto"]
    ),
)
_value = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=10,
)


def _paths(node: Any, prefix: List[Any]) -> List[List[Any]]:
    """Every key path in a plain YAML tree."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, prefix + [key])
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, prefix + [index])
    return found


@st.composite
def edited_configs(draw) -> str:
    """A shipped config with a few values replaced, keys added and keys deleted, as YAML text."""
    data = copy.deepcopy(draw(st.sampled_from(BASE_DATA)))
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in _paths(data, []) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(_value)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(_value)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


_EDIT_ALPHABET = st.characters(blacklist_categories=("Cs",))


@st.composite
def edited_texts(draw) -> str:
    """A shipped config with up to 8 character insertions, deletions or replacements."""
    text = draw(st.sampled_from(BASE_TEXTS))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(
            st.text(_EDIT_ALPHABET, min_size=1, max_size=6) | st.sampled_from(["\n", ": ", "- ", "  ", "#"])
        )
        if action == "insert":
            text = text[:position] + piece + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + len(piece) :]
        else:
            text = text[:position] + piece + text[position + len(piece) :]
    return text


def _check(text: str) -> None:
    """The loader's contract on one text."""
    try:
        config = parse_config(text, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.issues, "a ConfigError lists at least one issue"
        n_lines = text.count("\n") + 1
        for issue in exc.issues:
            assert issue.line is None or 1 <= issue.line <= n_lines, issue
            assert isinstance(issue.path, str) and isinstance(issue.message, str) and issue.message
            assert format_issue("fuzz.yaml", issue).startswith("fuzz.yaml:")
        return
    assert isinstance(config, DaemonConfig)
    assert DaemonConfig.model_validate(config.model_dump()) == config
    modalities = [sensor.modality for sensor in config.sensors]
    assert len(set(modalities)) == len(modalities) >= 1


@fuzz_settings(150)
@given(edited_configs())
def test_edited_configs_load_or_raise_config_error(text: str) -> None:
    _check(text)


@fuzz_settings(200)
@given(edited_texts())
def test_edited_texts_load_or_raise_config_error(text: str) -> None:
    _check(text)


@fuzz_settings(60)
@given(st.binary(max_size=300))
def test_any_file_bytes_load_or_raise_config_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "config.yaml"
        path.write_bytes(data)
        try:
            load_config(path)
        except ConfigError as exc:
            assert exc.issues and str(path) in str(exc)


def test_the_shipped_configs_are_valid() -> None:
    for text in BASE_TEXTS:
        assert isinstance(parse_config(text), DaemonConfig)


# Regressions (found by this suite): each of these let another exception escape (named in the
# comment) instead of FILE:LINE: key: message. A YAML file is written by an operator, so they were
# robustness bugs, not attacks.
@pytest.mark.parametrize(
    "text, line, path",
    [
        ("model: {path: !!int x}", 1, "model.path"),  # ValueError from the YAML int constructor
        ("model: !!timestamp x", 1, "model"),  # AttributeError inside PyYAML's timestamp constructor
        ("? [a, b]\n: 1", 1, "?"),  # ConstructorError (a YAMLError from safe_load, not from compose)
        ("sensors: &s [*s]", 1, "sensors[0]"),  # RecursionError walking a self-referencing alias
        ("a: " + "[" * 600 + "]" * 600, 1, "a" + "[0]" * 63),  # RecursionError on deep nesting
        ("x: 1\nd: &d {<<: *d}", 2, "d.<<"),  # a merge key naming its own mapping
    ],
    ids=["bad-int-tag", "bad-timestamp-tag", "complex-key", "recursive-alias", "deep-nesting", "self-merge"],
)
def test_former_defects_raise_config_error_with_line_and_path(text: str, line: int, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "fuzz.yaml")
    assert [(issue.line, issue.path) for issue in info.value.issues] == [(line, path)]


# Characters the edit alphabet above leaves out, aimed at the YAML features behind those defects.
_YAML_FEATURES = st.sampled_from(
    ["!!int x", "!!timestamp x", "!!set {a}", "!foo", "&a ", "*a", "? [k]\n: ", "<<: *a\n", "[[[[", "{"]
)


@fuzz_settings(150)
@given(st.sampled_from(BASE_TEXTS), st.lists(st.tuples(st.integers(0, 1 << 16), _YAML_FEATURES), max_size=4))
def test_tags_anchors_and_aliases_load_or_raise_config_error(text: str, edits) -> None:
    for position, piece in edits:
        position %= len(text) + 1
        text = text[:position] + piece + text[position:]
    _check(text)
