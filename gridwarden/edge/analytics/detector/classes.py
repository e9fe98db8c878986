"""Class names and class groups: which label ids a rule should care about.

Rules key on *groups* (``vehicle``, ``two_wheeler``, ...) rather than on single labels because a
COCO model mislabels the same object from frame to frame: a car seen from above is often called
``bus`` or even ``cell phone``. A group absorbs that noise; tracks absorb the rest.

Example::

    >>> sorted(resolve_classes(["vehicle"], COCO80))
    [1, 2, 3, 5, 7]
    >>> resolve_classes(["any"], COCO80) is None
    True
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path

COCO80: list[str] = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]  # fmt: skip

#: Groups that rules and configs can name instead of raw labels. ``goods`` and ``objects`` are
#: the same list: things left on a pavement or in a public space.
_GOODS = [
    "suitcase", "backpack", "handbag", "chair", "bench", "potted plant", "umbrella", "couch",
    "dining table", "bed", "refrigerator", "tv", "toilet",
]  # fmt: skip
#: ``non_motor``: the two-wheelers and trikes left on pavements and in no-parking stretches. COCO
#: has no e-bike class (a COCO model calls one ``bicycle`` or ``motorcycle``); a fine-tuned model
#: whose labels include ``e-bike`` or ``tricycle`` is matched through the same group, because
#: members the model does not know are skipped.
DEFAULT_CLASS_GROUPS: dict[str, list[str]] = {
    "vehicle": ["car", "bus", "truck", "motorcycle", "bicycle"],
    "motor_vehicle": ["car", "bus", "truck", "motorcycle"],
    "two_wheeler": ["bicycle", "motorcycle"],
    "non_motor": ["bicycle", "motorcycle", "e-bike", "tricycle"],
    "person": ["person"],
    "goods": list(_GOODS),
    "objects": list(_GOODS),
}

ANY = "any"

#: Group members that are not COCO labels, for fine-tuned models that know them.
FINE_TUNED_NAMES = frozenset({"e-bike", "tricycle"})


def resolve_classes(
    names: Iterable[str],
    class_names: list[str],
    groups: Mapping[str, list[str]] | None = None,
) -> set[int] | None:
    """Turn config names (labels or group names) into class ids of one model.

    ``any`` means every class and returns ``None`` so callers can skip filtering entirely.
    Names are matched case-insensitively, and ``_`` matches a space (``cell_phone`` ==
    ``cell phone``), because YAML configs and ultralytics names disagree on that spelling.
    A group member that this model does not know is ignored (a group is a wish list, and a
    custom model may only know ``car``), but a name that is neither a label nor a group is an
    error listing what is valid: a typo must not silently watch nothing.
    """
    groups = DEFAULT_CLASS_GROUPS if groups is None else groups
    index = {_norm(n): i for i, n in enumerate(class_names)}
    norm_groups = {_norm(g): members for g, members in groups.items()}
    wanted: set[int] = set()
    for name in names:
        key = _norm(name)
        if key == ANY:
            return None
        if key in index:
            wanted.add(index[key])
        elif key in norm_groups:
            wanted.update(index[_norm(m)] for m in norm_groups[key] if _norm(m) in index)
        else:
            raise ValueError(unknown_class_message(name, class_names, groups))
    return wanted


def unknown_class_message(name: str, class_names: Iterable[str], groups: Mapping[str, list[str]]) -> str:
    """Why ``name`` is not valid: the closest valid names when there are some (a typo), else the
    valid names once each (a group may share its name with a class, e.g. ``person``)."""
    valid = list(dict.fromkeys([ANY, *sorted(groups), *class_names]))
    by_norm = {_norm(v): v for v in valid}
    close = difflib.get_close_matches(_norm(name), list(by_norm), n=3, cutoff=0.6)
    if close:
        return (
            f"unknown class or group {name!r}; did you mean {' or '.join(repr(by_norm[c]) for c in close)}?"
        )
    return f"unknown class or group {name!r}; valid names are: {', '.join(valid)}"


def _norm(name: str) -> str:
    # ``e_bike``, ``e-bike`` and ``e bike`` are one label: fine-tuned models spell it all ways.
    return name.strip().lower().replace("_", " ").replace("-", " ")


def load_labels_file(path: str | Path) -> list[str]:
    """Read a labels file: one class name per line, in class-id order; blank lines are skipped
    only at the end (a blank line in the middle would shift every id after it, so it is an error).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"labels file not found: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ValueError(f"labels file {path} holds no class names")
    if "" in lines:
        raise ValueError(f"labels file {path} has a blank line at line {lines.index('') + 1}")
    return lines


def parse_metadata_names(raw: str) -> list[str]:
    """Parse ultralytics' ``names`` metadata, a Python dict literal such as ``{0: 'person'}``.

    ``ast.literal_eval`` and never ``eval``: the string comes from a model file that may have
    been downloaded from anywhere. A list literal is accepted too.
    """
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"model metadata 'names' is not a dict or list literal: {raw[:80]!r}") from exc
    if isinstance(value, dict):
        try:
            ids = sorted(int(k) for k in value)
        except (TypeError, ValueError) as exc:
            raise ValueError("model metadata 'names' has non-integer keys") from exc
        if ids != list(range(len(ids))):
            raise ValueError("model metadata 'names' ids are not 0..N-1")
        by_id = {int(k): str(v) for k, v in value.items()}
        return [by_id[i] for i in ids]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    raise ValueError(f"model metadata 'names' is a {type(value).__name__}, not a dict or list")


def are_placeholder_names(names: list[str]) -> bool:
    """True when names are just their own ids (``'0', '1', ...``), as ultralytics writes for a
    model built from an architecture file without a dataset: they carry no meaning."""
    return all(name == str(i) for i, name in enumerate(names))
