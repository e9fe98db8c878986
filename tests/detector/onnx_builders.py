"""Tiny ONNX models built in the tests, for layouts and edge cases the shared models lack.

Each model outputs a fixed tensor, optionally plus "mean of input channel 0" in chosen cells:
that one input-dependent term is enough to check colour order, pixel scale and pad value,
because channel 0 is red for an RGB model and blue for a BGR one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def build_constant_model(
    path: Path,
    output: np.ndarray,
    *,
    input_hw: tuple[int | str, int | str] = (320, 320),
    dynamic_batch: bool = False,
    channel0_mask: np.ndarray | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Save a model whose output is ``output + channel0_mask * mean(input[:, 0])`` per image."""
    output = np.asarray(output, dtype=np.float32)
    mask = np.zeros_like(output) if channel0_mask is None else np.asarray(channel0_mask, np.float32)
    batch: int | str = "batch" if dynamic_batch else 1
    h, w = input_hw
    nodes = [
        helper.make_node("Slice", ["images", "c0", "c1", "ax1"], ["red"]),
        helper.make_node("ReduceMean", ["red"], ["mean"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Reshape", ["mean", "shape_b11"], ["mean_b11"]),
        helper.make_node("Mul", ["mask", "mean_b11"], ["term"]),
        helper.make_node("Add", ["const", "term"], ["output"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "c0"),
        numpy_helper.from_array(np.array([1], np.int64), "c1"),
        numpy_helper.from_array(np.array([1], np.int64), "ax1"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "shape_b11"),
        numpy_helper.from_array(mask, "mask"),
        numpy_helper.from_array(output, "const"),
    ]
    graph = helper.make_graph(
        nodes,
        "constant_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, h, w])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, *output.shape[1:]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_batch_dynamic(src: Path, dst: Path) -> Path:
    """Copy a batch-1 exported model (YOLOX here) with a dynamic batch dimension.

    Exporters bake the batch into Reshape targets as a literal 1; Reshape's 0 means "copy this
    dimension from the input", so swapping them lets the batch flow through.
    """
    model = onnx.load(str(src))
    inits = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            target = numpy_helper.to_array(inits[node.input[1]]).copy()
            if target[0] == 1:
                target[0] = 0
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(target, node.input[1]))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]
    onnx.save(model, str(dst))
    return dst
