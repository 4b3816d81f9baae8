"""Silero VAD as an lstmlite model: fetch silero-vad's ONNX files from its wheel on the
package index (lstmlite does not ship silero's weights; they are MIT licensed), convert one
with its sample rate fixed at 16 kHz and its chunk of 512 + 64 samples, and store the front
end (Chunks) and silero's own segment settings in the model's metadata.

    python examples/vad/silero.py vad.lstm                  # float32
    python examples/vad/silero.py vad_int8.lstm --int8      # int8 weights
    lstmlite run vad.lstm speech.wav -o probs.npy           # one line per speech segment

The same with the command line alone:

    pip download silero-vad==6.2.3 --no-deps -d . && unzip silero_vad-6.2.3-py3-none-any.whl
    lstmlite convert silero_vad/data/silero_vad.onnx --input sr=16000 \\
        --input-shape input=?,576 --metadata examples/vad/metadata.json -o vad.lstm
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
#: the silero-vad release these figures and tests use
SILERO_VERSION = "6.2.3"
#: the files in its wheel (silero_vad/data/), and the inputs each takes
ONNX_FILES = ["silero_vad.onnx", "silero_vad_16k_op15.onnx", "silero_vad_16k_sequence.onnx",
              "silero_vad_half.onnx", "silero_vad_openvino_16k.onnx",
              "silero_vad_op18_ifless.onnx"]
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "lstmlite-tests",
                             f"silero-vad-{SILERO_VERSION}")


class FetchError(RuntimeError):
    """The wheel could not be downloaded (no network, no pip)."""


def fetch(cache: str = DEFAULT_CACHE) -> str:
    """The directory of silero-vad's package (data/*.onnx, data/silero_vad.jit,
    utils_vad.py), downloaded with pip into `cache` the first time."""
    package = os.path.join(cache, "silero_vad")
    if os.path.exists(os.path.join(package, "data", "silero_vad.onnx")):
        return package
    with tempfile.TemporaryDirectory() as download:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "download", f"silero-vad=={SILERO_VERSION}",
             "--no-deps", "--only-binary", ":all:", "--quiet", "-d", download],
            capture_output=True, text=True, timeout=600)
        wheels = [name for name in os.listdir(download) if name.endswith(".whl")]
        if result.returncode != 0 or not wheels:
            raise FetchError(f"silero-vad {SILERO_VERSION} could not be downloaded from the "
                             f"package index: {result.stderr.strip()[-300:]}")
        staging = cache + ".partial"
        with zipfile.ZipFile(os.path.join(download, wheels[0])) as wheel:
            wheel.extractall(staging, [n for n in wheel.namelist()
                                       if n.startswith("silero_vad/")])
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    if os.path.exists(cache):
        import shutil
        shutil.rmtree(cache)
    os.replace(staging, cache)
    return package


def utils(package: str):
    """silero-vad's own utils_vad module from a fetched package (OnnxWrapper,
    get_speech_timestamps; it imports torch): the reference its users run."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("silero_utils_vad",
                                                  os.path.join(package, "utils_vad.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def metadata() -> dict:
    """The front end and segment settings stored with the converted model (metadata.json):
    silero-vad's own defaults (threshold 0.5, 250 ms of speech, 100 ms of silence, 30 ms of
    padding)."""
    with open(os.path.join(HERE, "metadata.json"), encoding="utf-8") as handle:
        return json.load(handle)


def convert(onnx_path: str, verify: bool = True):
    """The model in one of silero's ONNX files (16 kHz), with metadata(): a Conversion."""
    import onnx
    from lstmlite.converters import convert_onnx
    graph = onnx.load(onnx_path)
    values = {"sr": 16000} if any(i.name == "sr" for i in graph.graph.input) else {}
    conversion = convert_onnx(graph, input_values=values,
                              input_shapes={"input": [None, 576]}, verify=verify,
                              tolerance=1e-5)
    conversion.model.metadata.update(metadata())
    return conversion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="the .lstm file to write")
    parser.add_argument("--file", default="silero_vad.onnx", choices=ONNX_FILES,
                        help="which of silero's ONNX files")
    parser.add_argument("--int8", action="store_true", help="store int8 weights")
    parser.add_argument("--cache", default=DEFAULT_CACHE)
    args = parser.parse_args()
    package = fetch(args.cache)
    conversion = convert(os.path.join(package, "data", args.file))
    print("\n".join(conversion.report.lines()))
    model = conversion.model.quantize() if args.int8 else conversion.model
    model.save(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
