"""The step every example's training script ends with, as a user would take it: export the
torch module to ONNX, then `lstmlite convert` it (verified against onnxruntime) to each
requested weights dtype, with labels and metadata stored in the file."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch


def export_and_convert(module: torch.nn.Module, features: int, input_name: str,
                       output_name: str, labels: Optional[Sequence[str]],
                       metadata: Dict[str, Any],
                       outputs: List[Tuple[str, str]], tolerance: str = "1e-4") -> None:
    """outputs: (path, weights dtype) per .lstm file to write; labels None for a model whose
    outputs are not classes. tolerance: the float32 verification against onnxruntime (a
    float16/int8 file is then checked against the float32 conversion at the converter's
    default quantized tolerance)."""
    work = tempfile.mkdtemp()
    try:
        onnx_path = os.path.join(work, "model.onnx")
        torch.onnx.export(module.eval(), (torch.zeros(1, 50, features),), onnx_path,
                          dynamo=False, input_names=[input_name], output_names=[output_name],
                          dynamic_axes={input_name: {0: "batch", 1: "time"}})
        label_args = []
        if labels is not None:
            label_args = ["--labels", os.path.join(work, "labels.txt")]
            with open(label_args[1], "w") as handle:
                handle.write("\n".join(labels) + "\n")
        metadata_path = os.path.join(work, "metadata.json")
        with open(metadata_path, "w") as handle:
            json.dump(metadata, handle)
        for path, dtype in outputs:
            subprocess.run([sys.executable, "-m", "lstmlite", "convert", onnx_path, "-o", path,
                            *label_args, "--metadata", metadata_path,
                            "--weights-dtype", dtype, "--tolerance", tolerance], check=True)
    finally:
        shutil.rmtree(work)
