"""``gridwarden config check``: every problem of an edge configuration file in one run.

Schema validation (:func:`gridwarden.yamlconfig.load_yaml_model`) stops at the schema; a person
fixing a file beside a camera cluster should not have to run the check again and again to meet
the next kind of problem. So the checks that need more than the schema run on the raw YAML data
even when the schema failed, each problem with file:line and, for a typo, the closest valid
names:

* the model file exists (relative paths against the file's folder, as the edge resolves them)
  and loads; its class names then replace COCO-80 for the class check;
* every class a rule names is a class of the model, a built-in group or one of the file's own
  ``class_groups`` (the class-agnostic ``static_object`` rule is skipped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gridwarden.yamlconfig import ConfigError, ConfigProblem, PathKey, format_field, parse_yaml_with_lines


def check_edge_config_file(path: str | Path) -> tuple[Any, list[ConfigProblem]]:
    """(the loaded :class:`EdgeConfig` or ``None``, every problem found), problems in file order."""
    from gridwarden.edge.config import load_edge_config

    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [ConfigProblem(source, None, "", "file not found")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [ConfigProblem(source, None, "", f"cannot read file: {exc}")]
    try:
        data, lines = parse_yaml_with_lines(text, source)
    except ConfigError as exc:
        return None, list(exc.problems)  # a syntax error: nothing further can be read
    config = None
    problems: list[ConfigProblem] = []
    try:
        config = load_edge_config(path)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if isinstance(data, dict):
        class_names, model_problems = _model_classes(data, lines, source, Path(path).resolve().parent, config)
        problems.extend(model_problems)
        problems.extend(_class_problems(data, lines, source, class_names))
    seen: set[str] = set()
    unique = [p for p in problems if not (str(p) in seen or seen.add(str(p)))]  # type: ignore[func-returns-value]
    unique.sort(key=lambda p: (p.line or 0, p.field))
    return (config if not unique else None), unique


def _model_classes(
    data: dict[str, Any], lines: dict[PathKey, int], source: str, base: Path, config: Any
) -> tuple[list[str], list[ConfigProblem]]:
    """The class names rules are checked against, and the problems of the model section."""
    from gridwarden.edge.analytics.detector.classes import COCO80

    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("path"), str):
        return list(COCO80), []
    model_path = Path(model["path"]).expanduser()
    if not model_path.is_absolute():
        model_path = base / model_path
    loc: PathKey = ("model", "path")
    if not model_path.exists():
        return list(COCO80), [
            ConfigProblem(source, lines.get(loc), "model.path", f"model file {model_path} does not exist")
        ]
    if config is None:
        return list(COCO80), []  # the schema failed: the model is loaded once the file is valid
    from gridwarden.edge.analytics.model_loader import build_detector

    try:
        detector = build_detector(config)
    except Exception as exc:  # any load failure is a configuration problem to report
        return list(COCO80), [
            ConfigProblem(source, lines.get(loc), "model.path", f"cannot load {model_path}: {exc}")
        ]
    return (list(detector.class_names) if detector is not None else list(COCO80)), []


def _class_problems(
    data: dict[str, Any], lines: dict[PathKey, int], source: str, class_names: list[str]
) -> list[ConfigProblem]:
    from gridwarden.edge.analytics.detector.classes import DEFAULT_CLASS_GROUPS, resolve_classes

    own = data.get("class_groups")
    groups = {**DEFAULT_CLASS_GROUPS, **(own if isinstance(own, dict) else {})}
    problems = []
    for ci, camera in _items(data.get("cameras")):
        for zi, zone in _items(camera.get("zones")):
            for ri, rule in _items(zone.get("rules")):
                if rule.get("type") == "static_object" or not isinstance(rule.get("classes"), list):
                    continue
                for ki, name in enumerate(rule["classes"]):
                    if not isinstance(name, str):
                        continue
                    try:
                        resolve_classes([name], class_names, groups)
                    except ValueError as exc:
                        loc: PathKey = ("cameras", ci, "zones", zi, "rules", ri, "classes", ki)
                        line = lines.get(loc) or lines.get(loc[:-1])
                        problems.append(ConfigProblem(source, line, format_field(loc), str(exc)))
    return problems


def _items(value: Any) -> list[tuple[int, dict[str, Any]]]:
    return [(i, v) for i, v in enumerate(value) if isinstance(v, dict)] if isinstance(value, list) else []
