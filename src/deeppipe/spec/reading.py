"""Reading experiment files safely: YAML with no tags, nothing evaluated, and nothing silently
lost (a key given twice, absurd nesting, alias bombs and non-UTF-8 files are refused with the file
and line). Kept apart from the schema so tools that only read files (dvcgen) stay light."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

from deeppipe.errors import SpecError

MAX_FILE_BYTES = 1 << 20  # an experiment file is a page of YAML, not a data set
MAX_DEPTH = 64
MAX_ALIASES = 200
MAX_NODES = 200_000  # values once every alias is expanded: a spec is hundreds, a "billion laughs" is 2^40


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader (no tags, nothing constructed but plain data) that also refuses what
    it would silently accept: a key given twice (the first value lost), absurd nesting, alias bombs."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_ALIASES} aliases (*name): refused")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.YAMLError(f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        _expanded_size(node, {}, set())
        return node

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice (lines {seen[key]} and {line}); the first would be lost",
                    key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: Any, sizes: dict[int, int], open_: set[int]) -> int:
    """How many values ``node`` stands for with its aliases expanded (each shared node counted once
    per use, computed once); a document over MAX_NODES, or one that contains itself, is refused."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_:
        raise yaml.YAMLError("an alias refers to a value that contains it (a recursive document): refused")
    open_.add(key)
    size = 1
    if isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, sizes, open_) + _expanded_size(v, sizes, open_) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(v, sizes, open_) for v in node.value)
    open_.discard(key)
    if size > MAX_NODES:
        raise yaml.YAMLError(f"expands to more than {MAX_NODES:,} values once its aliases (*name) are "
                             "resolved (an alias bomb?): refused")
    sizes[key] = size
    return size


def parse_yaml(text: str, *, file: str) -> Any:
    """Safe YAML text -> data, every failure a SpecError naming the file and line. A run reads its
    spec more than once (validation, the hooks, every tuning trial and ensemble member) and PyYAML's
    pure-Python parser takes ~10 ms a page: the same text is parsed once, each caller gets a copy."""
    return copy.deepcopy(_parse(text, file))


@functools.lru_cache(maxsize=32)
def _parse(text: str, file: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}", file=file) from None
    except RecursionError:
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep", file=file) from None
    except ValueError as exc:  # e.g. an integer of thousands of digits (Python's int() limit)
        raise SpecError(f"not valid YAML: {str(exc).splitlines()[0]}", file=file) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Parse an experiment file (no tags, nothing evaluated); it must be a mapping of sections."""
    p = Path(path)
    if not p.is_file():
        raise SpecError("experiment file not found", file=str(p), expected="an existing .yml file", found=str(p))
    if p.stat().st_size > MAX_FILE_BYTES:
        raise SpecError("the experiment file is too large to be a spec", file=str(p),
                        expected=f"at most {MAX_FILE_BYTES // 1024} KiB of YAML", found=f"{p.stat().st_size} bytes")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not a UTF-8 text file (byte {exc.start} is {exc.object[exc.start]:#04x})", file=str(p),
                        expected="a YAML text file") from None
    data = parse_yaml(text, file=str(p))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError("the file must hold a mapping of sections", file=str(p),
                        expected="data:, model:, train: ...", found=type(data).__name__)
    return data
