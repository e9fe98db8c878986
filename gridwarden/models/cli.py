"""``gridwarden models ...``: check, export, quantise models, and list or validate model cards.

The lead's ``gridwarden/cli.py`` calls :func:`register_cli` with its sub-parsers. Every command
imports its heavy parts (onnxruntime, onnx, ultralytics) only when it runs. Also runnable alone:
``python -m gridwarden.models.cli check model.onnx``.

Exit status: 0 success, 1 the work failed (missing tool, export error), 2 bad input (file not
found, invalid card, a card that contradicts its model).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def _cmd_check(args: argparse.Namespace) -> int:
    from gridwarden.edge.analytics.detector import ModelLoadError, UnsupportedModelError
    from gridwarden.models.check import check_model, format_report

    frame = None
    if args.frame_from:
        from gridwarden.models.quantize import sample_frames

        try:
            frame = next(sample_frames(args.frame_from, 1))
        except (FileNotFoundError, StopIteration) as exc:
            print(f"error: no frame from {args.frame_from}: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    try:
        report = check_model(
            args.model,
            runs=args.runs,
            warmup=args.warmup,
            input_size=args.input_size,
            providers=args.providers,
            frame=frame,
            backend=args.backend,
        )
    except (FileNotFoundError, ValueError, ModelLoadError, UnsupportedModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return EXIT_BAD_INPUT if report.card.mismatches else EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from gridwarden.models.export import run

    return run(args)


def _cmd_quantize(args: argparse.Namespace) -> int:
    from gridwarden.models.quantize import QuantizeError, compare_models, format_summary, quantize_model

    progress = not args.no_progress
    try:
        result = quantize_model(
            args.model,
            args.calibration,
            frames=args.frames,
            out=args.out,
            method=args.method,
            per_channel=not args.per_tensor,
            reduce_range=args.reduce_range,
            input_size=args.input_size,
            progress=progress,
        )
        clips = args.compare or [args.calibration]
        agreements = compare_models(
            args.model,
            result.output,
            clips,
            frames=args.compare_frames,
            input_size=args.input_size,
            progress=progress,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (QuantizeError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        doc = {
            "output": str(result.output),
            "calibration_clip": result.calibration_clip,
            "calibration_frames": result.calibration_frames,
            "method": result.method,
            "per_channel": result.per_channel,
            "float_nodes": result.float_nodes,
            "clipped_silu_inputs": result.clipped_silu_inputs,
            "seconds": result.seconds,
            "agreement": [a.to_dict() for a in agreements],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(format_summary(result, agreements))
    return EXIT_OK


def _cmd_cards(args: argparse.Namespace) -> int:
    from gridwarden.models.cards import CARDS_DIR, CardError, load_card, load_cards

    try:
        cards = [load_card(p) for p in args.files] if args.files else load_cards(CARDS_DIR)
    except CardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps([c.model_dump() for c in cards], indent=2))
        return EXIT_OK
    for card in cards:
        classes = "COCO-80" if card.classes == "coco80" else f"{card.num_classes} classes"
        print(
            f"{card.name}: {card.family} ({card.author}, {card.licence}), {card.layout} layout, "
            f"{card.input_size}px, {classes}, file {card.file}, sha256 {card.sha256[:12]}..."
        )
    if args.files:
        print(f"{len(cards)} card(s) valid")
    return EXIT_OK


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``models`` and its sub-commands to the ``gridwarden`` parser."""
    from gridwarden.models import export

    models = subparsers.add_parser(
        "models",
        help="check, export and quantise detection models; list model cards",
        description="Model tools: inspect an ONNX model as the detector sees it, export ultralytics weights "
        "to ONNX, quantise to INT8 calibrated on footage, and list or validate model cards.",
    )
    sub = models.add_subparsers(dest="models_command", metavar="SUBCOMMAND", required=True)

    chk = sub.add_parser(
        "check",
        help="what the detector reads from an ONNX model, and its speed on this machine",
        description="Load MODEL exactly as the edge service would and report: detected layout, class names "
        "(count and the first few), input size, the inference backend chosen and why (with 'auto': OpenVINO "
        "when installed and measured faster here, else onnxruntime), execution providers, batch support, "
        "milliseconds per frame (p50/p95 after a warm-up) and the model card whose sha256 matches the file. "
        "Exit status 2 when the file cannot be loaded or contradicts its card.",
    )
    chk.add_argument("model", help="ONNX model file")
    chk.add_argument("--json", action="store_true", help="print the report as JSON (for machines)")
    chk.add_argument("--runs", type=int, default=50, help="timed runs (default 50)")
    chk.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs first (default 5)")
    chk.add_argument("--input-size", type=int, help="input size for a model with dynamic height/width")
    chk.add_argument(
        "--providers", nargs="+", metavar="PROVIDER", help="execution providers to ask for, best first"
    )
    chk.add_argument(
        "--backend",
        choices=["auto", "onnxruntime", "openvino"],
        default="auto",
        help="inference runtime, as the edge config's model.backend (default auto)",
    )
    chk.add_argument(
        "--frame-from",
        metavar="CLIP",
        help="time on a frame of this clip (default: a synthetic 1280x720 frame)",
    )
    chk.set_defaults(func=_cmd_check)

    exp = sub.add_parser("export", help="ultralytics .pt weights to ONNX (needs ultralytics + torch)",
                         description=export.DESCRIPTION)  # fmt: skip
    export.add_arguments(exp)
    exp.set_defaults(func=_cmd_export)

    qua = sub.add_parser(
        "quantize",
        help="INT8 static quantisation calibrated on a clip, with speed-up and detection agreement",
        description="Quantise MODEL to INT8 (onnxruntime static quantisation, QDQ, uint8 activations, per-channel "
        "int8 weights) using frames of CLIP preprocessed exactly as the detector does, then compare the INT8 "
        "model with the FP32 one on footage: the fraction of FP32 boxes matched by an INT8 box of the same "
        "class at IoU >= 0.5 (and the reverse), and inference time of both. Progress goes to stderr.",
    )
    qua.add_argument("model", help="FP32 ONNX model")
    qua.add_argument(
        "--calibration", required=True, metavar="CLIP", help="clip of the kind of scene the model will see"
    )
    qua.add_argument(
        "--frames", type=int, default=100, help="calibration frames, spread over the clip (default 100)"
    )
    qua.add_argument("--out", help="output path (default: MODEL with .int8.onnx)")
    qua.add_argument("--method", choices=["minmax", "percentile", "entropy"], default="minmax",
                     help="calibration method (default minmax; percentile is slower)")  # fmt: skip
    qua.add_argument(
        "--per-tensor", action="store_true", help="one weight scale per tensor (default: per channel)"
    )
    qua.add_argument("--reduce-range", action="store_true", help="7-bit weights, for x86 CPUs without VNNI")
    qua.add_argument("--input-size", type=int, help="input size for a model with dynamic height/width")
    qua.add_argument(
        "--compare", nargs="+", metavar="CLIP", help="clips to compare on (default: the calibration clip)"
    )
    qua.add_argument("--compare-frames", type=int, default=50, help="frames per comparison clip (default 50)")
    qua.add_argument("--json", action="store_true", help="print the summary as JSON")
    qua.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    qua.set_defaults(func=_cmd_quantize)

    cards = sub.add_parser(
        "cards",
        help="list the model cards, or validate card files",
        description="Without FILE: validate and list the model cards shipped with Gridwarden. With FILE(s): "
        "validate those card files (exit status 2 naming the file and field on the first invalid one).",
    )
    cards.add_argument("files", nargs="*", type=Path, metavar="FILE", help="card YAML files to validate")
    cards.add_argument("--json", action="store_true", help="print the cards as JSON")
    cards.set_defaults(func=_cmd_cards)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gridwarden")
    register_cli(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
