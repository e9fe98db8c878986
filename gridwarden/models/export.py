"""``gridwarden models export``: ultralytics ``.pt`` weights to an ONNX file the detector runs.

Ultralytics and torch are multi-GB and never part of the edge runtime, so they are imported only
here, only when an export runs, and their absence is a clear message rather than a traceback.

Nothing is downloaded, ever: ultralytics resolves a bare name such as ``yolo11n.pt`` by fetching
the official weights from the internet (and installs missing packages with pip on its own). Both
are stopped before ultralytics is called: a path that is not a local file is refused with a
message saying where to get the weights, and ``YOLO_OFFLINE``/``YOLO_AUTOINSTALL`` are set.

Runs as ``python -m gridwarden.models.export`` too, from a separate venv that has torch (e.g.
``.venv-bench``, made by ``bench/setup_ultralytics_venv.sh``): this module needs only the
standard library until ultralytics is imported.

Example::

    .venv-bench/bin/python -m gridwarden.models.export yolo11n.pt --imgsz 640 --out yolo11n.onnx
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import shutil
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1


class ExportError(RuntimeError):
    """The export cannot run; the message says what to do about it."""


def export_to_onnx(
    weights: str | Path,
    *,
    imgsz: int = 640,
    out: str | Path | None = None,
    dynamic: bool = False,
    opset: int | None = None,
) -> Path:
    """Export ultralytics ``weights`` to ONNX and return the written path.

    ``out`` defaults to the weights' path with ``.onnx``. ultralytics writes the class names,
    stride and imgsz into the ONNX metadata itself; the detector reads them from there.
    Raises :class:`ExportError` with the fix in its message.
    """
    weights = Path(weights)
    check_weights_are_local(weights)
    if imgsz < 32 or imgsz % 32:
        raise ExportError(f"--imgsz must be a multiple of 32 and at least 32, got {imgsz}")
    YOLO = import_ultralytics()  # noqa: N806 (the class's own name)
    out_path = Path(out) if out is not None else weights.with_suffix(".onnx")
    if out_path.suffix != ".onnx":
        raise ExportError(f"--out must end in .onnx, got {out_path}")
    try:
        model = YOLO(str(weights))
        written = model.export(
            format="onnx",
            imgsz=imgsz,
            dynamic=dynamic,
            opset=opset,
            # onnxslim is optional: simplify only when it is there (never auto-installed).
            simplify=importlib.util.find_spec("onnxslim") is not None,
        )
    except Exception as exc:  # ultralytics/torch raise anything from bad pickles to missing ops
        raise ExportError(f"ultralytics could not export {weights}: {type(exc).__name__}: {exc}") from exc
    written_path = Path(str(written))
    if not written_path.is_file():
        raise ExportError(f"ultralytics reported {written_path} but wrote no such file")
    if written_path.resolve() != out_path.resolve():
        out_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(written_path), out_path)
    return out_path


def check_weights_are_local(weights: Path) -> None:
    """Refuse anything that is not an existing local file, before ultralytics can download it."""
    if weights.is_file():
        return
    if weights.exists():
        raise ExportError(f"{weights} is not a file")
    if len(weights.parts) == 1 and weights.suffix == ".pt":
        raise ExportError(
            f"{weights} is not a local file. A bare name like this means the official Ultralytics weights, "
            "which have to be downloaded from the internet, and this tool never downloads anything. "
            f"On a machine with internet access, fetch them (e.g. from "
            f"https://github.com/ultralytics/assets/releases/latest/download/{weights.name}), copy the "
            "file here and pass its path."
        )
    raise ExportError(f"weights file not found: {weights}")


def import_ultralytics() -> type:
    """Import ultralytics (and check onnx, which its ONNX export needs) with downloads and
    automatic pip installs switched off; say how to install what is missing."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ["YOLO_AUTOINSTALL"] = "false"
    if importlib.util.find_spec("ultralytics") is None:
        raise ExportError(
            "ultralytics is not installed in this Python environment "
            f"({sys.prefix}). It needs torch (several GB), so the edge runtime does not include it. "
            "Install it with `pip install ultralytics onnx` (or run bench/setup_ultralytics_venv.sh and "
            "use `.venv-bench/bin/python -m gridwarden.models.export ...`)."
        )
    if importlib.util.find_spec("onnx") is None:
        raise ExportError(
            f"the onnx package is not installed in {sys.prefix}; ultralytics needs it to write ONNX. "
            "Install it with `pip install onnx`."
        )
    from ultralytics import YOLO

    return YOLO


def read_metadata_names(onnx_path: str | Path) -> list[str]:
    """Class names from an exported file's metadata (a Python dict literal: ``ast``, never ``eval``)."""
    import onnxruntime as ort

    meta = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_modelmeta()
    raw = meta.custom_metadata_map.get("names")
    if raw is None:
        raise ExportError(f"{onnx_path} has no 'names' metadata")
    value = ast.literal_eval(raw)
    return [str(value[k]) for k in sorted(value)] if isinstance(value, dict) else [str(v) for v in value]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("weights", help="local ultralytics weights file (.pt); nothing is downloaded")
    parser.add_argument("--imgsz", type=int, default=640, help="square input size in pixels (default 640)")
    parser.add_argument("--out", help="output .onnx path (default: the weights' path with .onnx)")
    parser.add_argument(
        "--dynamic",
        action="store_true",
        help="dynamic batch and image size (lets the detector batch cameras)",
    )
    parser.add_argument("--opset", type=int, help="ONNX opset (default: what ultralytics picks)")


DESCRIPTION = (
    "Export ultralytics weights (.pt) to ONNX for the detector. The class names go into the ONNX "
    "metadata (ultralytics writes them). Needs ultralytics and torch, which the edge runtime does not "
    "include: install them with `pip install ultralytics onnx`, or use the benchmark venv "
    "(bench/setup_ultralytics_venv.sh; then .venv-bench/bin/python -m gridwarden.models.export). "
    "Never downloads: WEIGHTS must be a local file; for the official weights, fetch them on a machine "
    "with internet first."
)


def run(args: argparse.Namespace) -> int:
    try:
        out = export_to_onnx(
            args.weights, imgsz=args.imgsz, out=args.out, dynamic=args.dynamic, opset=args.opset
        )
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    names = read_metadata_names(out)
    print(f"wrote {out} ({len(names)} classes: {', '.join(names[:5])}{', ...' if len(names) > 5 else ''})")
    print(f"check it with: gridwarden models check {out}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gridwarden.models.export", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
