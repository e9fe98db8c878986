"""Load YAML configuration files into pydantic models with errors that name file, line and field.

Why not plain ``yaml.safe_load`` + ``Model.model_validate``: the person fixing a bad config on a
box beside a camera cluster needs ``edge.yaml:14: cameras[0].zones[1].polygon: ...`` rather than
a pydantic traceback. We compose the YAML node tree once, remember the line of every mapping
key and sequence item, and translate pydantic's error locations back to those lines.

Example::

    >>> from pydantic import BaseModel
    >>> class M(BaseModel):
    ...     port: int
    >>> try:
    ...     load_yaml_model(M, text="port: nope\\n", source="demo.yaml")
    ... except ConfigError as e:
    ...     print(e.problems[0])
    demo.yaml:1: port: Input should be a valid integer, unable to parse string as an integer
"""

from __future__ import annotations

import difflib
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a configuration file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ConfigError(ValueError):
    """A configuration file is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def format_field(loc: PathKey) -> str:
    """``('cameras', 0, 'zones')`` → ``cameras[0].zones``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _walk(node: yaml.Node, path: PathKey, lines: dict[PathKey, int]) -> Any:
    """Build plain Python data from a YAML node, recording the 1-based line of each path."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct_scalar(key_node)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            result[key] = _walk(value_node, child, lines)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            items.append(_walk(item, child, lines))
        return items
    return _construct_scalar(node)


def _construct_scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def parse_yaml_with_lines(text: str, source: str) -> tuple[Any, dict[PathKey, int]]:
    """Parse YAML text; return the data and a map from field path to line number."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else None
        raise ConfigError([ConfigProblem(source, line, "", f"YAML syntax error: {exc.problem}")]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML forbids (control characters, U+FFFE)
        line = text[: exc.position].count("\n") + 1
        message = f"character U+{exc.character:04X} is not allowed in YAML (at offset {exc.position})"
        raise ConfigError([ConfigProblem(source, line, "", message)]) from None
    except yaml.YAMLError as exc:  # anything else the reader or scanner refuses
        raise ConfigError([ConfigProblem(source, None, "", f"YAML error: {exc}")]) from None
    lines: dict[PathKey, int] = {}
    if root is None:
        return {}, lines
    return _walk(root, (), lines), lines


def _line_for(loc: PathKey, lines: dict[PathKey, int]) -> int | None:
    """The line of the deepest existing prefix of ``loc`` (a missing field points at its parent)."""
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def problems_from_validation(
    exc: ValidationError,
    source: str,
    lines: dict[PathKey, int],
    data: Any = None,
    model: type[BaseModel] | None = None,
) -> list[ConfigProblem]:
    """One problem per pydantic error, at the line of its field; with ``model``, a misspelt key,
    rule type or choice gets the closest valid names ("did you mean ...?")."""
    problems = []
    for err in exc.errors():
        # pydantic adds the name of a tagged-union member or validator to loc; drop non-data parts.
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        loc = _strip_union_tags(loc, data)
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        msg = _with_suggestion(err, loc, msg, model, data)
        problems.append(ConfigProblem(source, _line_for(loc, lines), format_field(loc), msg))
    return problems


def did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or an empty string."""
    close = difflib.get_close_matches(word, choices, n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _with_suggestion(err: Any, loc: PathKey, msg: str, model: type[BaseModel] | None, data: Any) -> str:
    kind = err.get("type")
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden" and loc and isinstance(loc[-1], str):
        parent = _model_at(model, loc[:-1], data) if model is not None else None
        if parent is None:
            return msg
        fields = list(parent.model_fields)
        return f"unknown field {loc[-1]!r}{did_you_mean(loc[-1], fields)}; fields here: {', '.join(fields)}"
    if kind == "union_tag_invalid":
        expected = _quoted_list(str(ctx.get("expected_tags", "")))
        tag = str(ctx.get("tag", ""))
        return f"unknown type {tag!r}{did_you_mean(tag, expected)}; types: {', '.join(expected)}"
    if kind == "literal_error" and isinstance(err.get("input"), str):
        expected = _quoted_list(str(ctx.get("expected", "")))
        return msg + did_you_mean(err["input"], expected)
    return msg


def _quoted_list(text: str) -> list[str]:
    return re.findall(r"'([^']*)'", text)


def _model_at(model: Any, loc: PathKey, data: Any) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at ``loc`` (following lists, dicts,
    optionals and tagged unions by the data's ``type``), or ``None`` when it cannot tell."""
    tp: Any = model
    node = data
    for part in (*loc, None):
        tp = _concrete(tp, node)
        if part is None:
            break
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            field = tp.model_fields.get(part)
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) in (list, tuple) and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict and isinstance(part, str):
            tp = get_args(tp)[1]
        else:
            return None
        node = (
            node.get(part)
            if isinstance(node, dict)
            else (
                node[part]
                if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
                else None
            )
        )
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _concrete(tp: Any, node: Any) -> Any:
    """Unwrap ``Annotated``, ``Optional`` and unions (a union of models: the member whose
    ``type`` literal is the data's ``type``)."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
            wanted = node.get("type") if isinstance(node, dict) else None
            for member in members:
                if (
                    isinstance(member, type)
                    and issubclass(member, BaseModel)
                    and "type" in member.model_fields
                    and wanted in get_args(member.model_fields["type"].annotation)
                ):
                    return member
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            return models[0] if len(models) == 1 else tp
        return tp


def _strip_union_tags(loc: PathKey, data: Any) -> PathKey:
    """Remove the discriminator tags pydantic inserts into error locations of tagged unions.

    For ``rules: [{type: illegal_parking, dwell_s: x}]`` pydantic reports
    ``rules.0.illegal_parking.dwell_s``; the file has no ``illegal_parking`` key, so drop it.
    """
    cleaned: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and node.get("type") == part:
            continue
        cleaned.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(cleaned)


def load_yaml_model(
    model: type[M], *, path: str | Path | None = None, text: str | None = None, source: str | None = None
) -> M:
    """Load and validate a YAML file (or text) into ``model``; raise :class:`ConfigError` on any problem."""
    if text is None:
        if path is None:
            raise ValueError("load_yaml_model needs path or text")
        p = Path(path)
        source = source or str(p)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError([ConfigProblem(source, None, "", "file not found")]) from None
        except OSError as exc:
            raise ConfigError(
                [ConfigProblem(source, None, "", f"cannot read file: {exc.strerror}")]
            ) from None
    source = source or "<config>"
    data, lines = parse_yaml_with_lines(text, source)
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem(source, 1, "", "the top level must be a mapping of field: value")])
    try:
        return model.model_validate(data, context={"lines": lines, "source": source})
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(exc, source, lines, data, model)) from None
