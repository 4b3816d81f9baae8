"""The lstmlite command: `lstmlite demo`, and more subcommands as they arrive.

Errors print one line naming what was wrong and exit non-zero; no traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

from .errors import LstmliteError

#: Upper bounds of the count arguments: far beyond any real use, and they keep a typo such as
#: --steps 10000000000 from becoming an allocation the machine cannot make.
MAX_STEPS = 10_000_000
MAX_REPEATS = 10_000
MAX_INPUT_SIZE = 1 << 20


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (`lstmlite demo: error: ...`) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _count(minimum: int, maximum: int):
    """An argparse type: an integer in [minimum, maximum]."""
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"expected an integer from {minimum} to "
                                             f"{maximum}, got {value}")
        return value
    return parse


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_keyword_demo
    run_keyword_demo(args.model, args.wav)
    return 0


#: the largest exit status `run` gives for failed inputs (above it shells read signals)
MAX_FAILED_STATUS = 125


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import RunError, check_output, load_streamable, run_file, run_stdin
    if args.stdin == bool(args.inputs):
        raise RunError("give INPUT files or --stdin, not both" if args.stdin
                       else "give an INPUT file (.wav, .npy, .csv) or --stdin")
    many = not args.stdin and (len(args.inputs) > 1 or (args.output is not None and
                                                        os.path.isdir(args.output)))
    if many:
        return _run_many(args)
    model = load_streamable(args.model)
    def emit(line: str) -> None:
        print(line, flush=args.stdin)
    if args.stdin:
        check_output(args.output)
        if args.output and not args.output.lower().endswith(".csv"):
            raise RunError(f"{args.output}: with --stdin the outputs are written as they come: "
                           f"give a .csv file")
        handle = open(args.output, "w", encoding="utf-8") if args.output else None
        try:
            summary = run_stdin(model, sys.stdin.buffer, handle, out=emit)
        finally:
            if handle is not None:
                handle.close()
        print(f"# {summary['steps']} steps", file=sys.stderr)
        return 0
    summary = run_file(model, args.inputs[0], args.output, out=emit,
                       progress=sys.stdout.isatty())
    seconds = f", {summary['seconds']:.2f} s of input" if summary.get("seconds") else ""
    front = (f"front end {summary['front_end_us']:.1f} us + " if summary["front_end_us"]
             else "")
    print(f"# {summary['steps']} steps{seconds}; per step: {front}model "
          f"{summary['model_us']:.1f} us" + (f"; outputs in {args.output}" if args.output
                                             else ""), file=sys.stderr)
    return 0


def _run_many(args: argparse.Namespace) -> int:
    """run with several inputs (or -o a directory): each through its own stream, in
    --jobs worker processes; lines prefixed by the file; the exit status counts failures."""
    from .fileio import check_writable_output
    from .runner import RunError, load_streamable, output_paths, run_many
    directory = args.output
    if directory is not None:
        if os.path.splitext(directory)[1].lower() in (".npy", ".csv") and \
                not os.path.isdir(directory):
            raise RunError(f"{directory}: with several inputs -o names a directory, where each "
                           f"input's outputs are written as <name>.{args.output_format}")
        if not os.path.isdir(directory):
            check_writable_output(directory, RunError)
    outputs = output_paths(args.inputs, directory, "." + args.output_format)
    model = load_streamable(args.model)
    if directory is not None and not os.path.isdir(directory):
        os.mkdir(directory)
    jobs = args.jobs or os.cpu_count() or 1
    results = run_many(model, args.inputs, outputs, jobs,
                       out=lambda line: print(line, flush=True),
                       error=lambda message: print(f"lstmlite run: error: {message}",
                                                   file=sys.stderr, flush=True),
                       progress=sys.stderr.isatty())
    done = [r["summary"] for r in results if r["error"] is None]
    failed = len(results) - len(done)
    steps = sum(summary["steps"] for summary in done)
    seconds = sum(summary.get("seconds") or 0.0 for summary in done)
    model_us = sum(summary["model_us"] * summary["steps"] for summary in done) / max(steps, 1)
    print(f"# {len(results)} files: {len(done)} done, {failed} failed; {steps} steps"
          + (f", {seconds:.2f} s of input" if seconds else "")
          + f"; per step: model {model_us:.1f} us; {min(jobs, len(results))} "
          f"worker{'s' if min(jobs, len(results)) > 1 else ''}"
          + (f"; outputs in {directory}" if directory else ""), file=sys.stderr)
    return min(failed, MAX_FAILED_STATUS)


def _cmd_compare(args: argparse.Namespace) -> int:
    from .runner import compare_files
    for line in compare_files(args.reference, args.candidate, args.input):
        print(line)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .format import QUANTIZABLE, model_from_info, read_info
    info, buffer = read_info(args.file, verify_checksum=False)
    status = "ok" if info.checksum_ok else (f"MISMATCH (stored {info.checksum_stored:#010x}, "
                                            f"computed {info.checksum_computed:#010x})")
    print(f"file: {info.path} ({info.file_size} bytes)")
    print(f"format version: {info.version}; checksum (CRC32): {status}")
    if not info.checksum_ok:
        return 1
    model = model_from_info(info, buffer)
    tensor_bytes = sum(t.size for t in info.tensors.values())
    print(f"tensors: {len(info.tensors)}, {tensor_bytes} bytes "
          f"(overhead {info.file_size - tensor_bytes} bytes incl. alignment)")
    print("layers:")
    print(model.summary())
    print("compute (per layer: weights as loaded, and what the kernels compute in):")
    for index, layer in enumerate(model.layers):
        stored = sorted({info.tensors[name].dtype for role, name in
                         info.layers[index]["tensors"].items() if role in QUANTIZABLE})
        if layer.weight_dtype == "int8":
            how = "int8 weights; int8 x int8 -> int32 products, float32 gates and state"
        elif layer.matrix_names:
            how = "float32 weights; float32 products" + (
                f" (stored as {', '.join(stored)}, widened on load)"
                if stored and stored != ["float32"] else "")
        elif getattr(layer, "fft", None):
            how = "a windowed DFT basis: float32, computed as an FFT"
        else:
            how = "float32 (no weight matrices)"
        print(f"  {index}: {layer.type_name}: {how}")
    for tensor in info.tensors.values():
        scale = f" scale={tensor.scale}" if tensor.scale else ""
        print(f"    {tensor.name:<24} {tensor.dtype:<8} {str(tensor.shape):<16}{scale}")
    streamable = "yes" if model.streamable else "no (reverse/bidirectional layers: run() only)"
    print(f"streamable: {streamable}")
    print("metadata:", json.dumps(info.metadata, indent=1, ensure_ascii=False)
          if info.metadata else "(none)")
    return 0


def read_metadata(path: str) -> dict:
    """The JSON object in `path` (a regular file of at most 4 MiB)."""
    from .fileio import read_regular
    data = read_regular(path, "metadata file", limit=4 << 20)
    try:
        metadata = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LstmliteError(f"{path}: not a JSON file: {exc}") from None
    if not isinstance(metadata, dict):
        raise LstmliteError(f"{path}: expected a JSON object, got {type(metadata).__name__}")
    return metadata


def check_metadata(metadata: dict, model, where: str) -> None:
    """The documented metadata keys must describe something this model can use: a front end
    whose features match the model's input, a detection config over its labels."""
    from .detection import Detector, Segmenter
    from .features import from_config
    try:
        front = None
        if "frontend" in metadata:
            front = from_config(metadata["frontend"])
            if front.n_features != model.input_size:
                raise LstmliteError(f"front end gives {front.n_features} features per frame, "
                                    f"the model takes {model.input_size}")
        segmenter = Segmenter.for_model(metadata.get("detection"), front, model.output_size)
        if segmenter is None and "detection" in metadata:
            labels = metadata.get("labels")
            if not isinstance(labels, list) or len(labels) != model.output_size:
                raise LstmliteError(f"'detection' needs 'labels' naming the model's "
                                    f"{model.output_size} outputs")
            Detector.from_config(metadata["detection"], labels, 0.01)
    except LstmliteError as exc:
        raise LstmliteError(f"{where}: {exc}") from None


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import bench_file
    for line in bench_file(args.model, args.steps, args.repeats):
        print(line, flush=True)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    try:
        from lstmlite.converters.files import (DEFAULT_QUANTIZED_TOLERANCE, convert_source,
                                               read_labels, source_kind, verify_stored)
        from lstmlite.converters.signature import describe
    except ImportError as exc:  # the converters' optional dependencies
        raise LstmliteError(f"converting needs {exc.name or 'an optional package'}: pip "
                            f"install 'lstmlite[onnx]' or 'lstmlite[torch]'") from None
    from .fileio import check_writable_output, open_regular
    if args.quantized_tolerance is not None and args.weights_dtype == "float32":
        raise LstmliteError("--quantized-tolerance bounds a model stored with --weights-dtype "
                            "float16 or int8; with float32 weights --tolerance is the check")
    quantized_tolerance = args.quantized_tolerance or DEFAULT_QUANTIZED_TOLERANCE
    open_regular(args.source, "model file", LstmliteError).close()
    source_kind(args.source)  # an .lstm source, or an unknown kind: refused before any work
    output = args.output or os.path.splitext(args.source)[0] + ".lstm"
    if os.path.abspath(output) == os.path.abspath(args.source) or (
            os.path.exists(output) and os.path.samefile(output, args.source)):
        raise LstmliteError(f"{output}: the output would overwrite the source")
    check_writable_output(output)  # before the work: a symlink or device is never replaced
    options = {"head_activation": args.head_activation, "input_size": args.input_size}
    from lstmlite.converters.onnx_control import parse_input_shapes, parse_input_values
    input_values = parse_input_values(args.input or [])
    input_shapes = parse_input_shapes(args.input_shape or [])
    conversion = convert_source(args.source, verify=not args.no_verify,
                                tolerance=args.tolerance, seed=args.seed, options=options,
                                trust_code=args.trust_code, input_values=input_values,
                                input_shapes=input_shapes)
    model = conversion.model
    print(f"converted {args.source}: {len(model.layers)} layers, input {model.input_size}, "
          f"output {model.output_size}")
    print(model.summary())
    for line in describe(conversion.signature):
        print(f"  {line}")
    for note in conversion.notes:
        print(f"  note: {note}")
    metadata = read_metadata(args.metadata) if args.metadata else {}
    if args.labels:
        metadata["labels"] = read_labels(args.labels, model.output_size)
    check_metadata(metadata, model, args.metadata or args.labels)
    report = conversion.report
    if args.no_verify:
        print("verification: off (--no-verify)")
    else:
        if report is not None:
            for line in report.lines():
                print(line)
        if args.weights_dtype != "float32":
            accuracy = verify_stored(conversion, args.weights_dtype, args.seed,
                                     quantized_tolerance, where=args.source)
            print(f"with {args.weights_dtype} weights, as loaded from the file, against the "
                  f"float32 conversion (4 x 50 seeded random steps; quantized tolerance "
                  f"{quantized_tolerance:g} of the largest output): {accuracy}  ok")
            metadata["verification"] = dict(model.metadata.get("verification", {}), stored={
                "weights_dtype": args.weights_dtype, "against": "float32 conversion",
                "max_abs_difference": accuracy.max_abs, "relative": accuracy.relative,
                "cosine": accuracy.cosine, "top1_agreement": accuracy.top1,
                "quantized_tolerance": quantized_tolerance})
    model.save(output, metadata=metadata, weights_dtype=args.weights_dtype)
    print(f"wrote {output} ({os.path.getsize(output)} bytes)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lstmlite", description="Run recurrent networks one time step at a time.")
    commands = parser.add_subparsers(dest="command", metavar="command",
                                     parser_class=_Parser)
    commands.required = True
    demo = commands.add_parser(
        "demo", help="the bundled keyword spotter on a bundled sentence spoken by a voice it "
                     "never heard in training")
    demo.add_argument("--model", help="a .lstm file with an audio front end and detection "
                                      "config instead of the bundled keyword spotter")
    demo.add_argument("--wav", help="a 16-bit mono .wav file instead of the bundled sentence")
    demo.set_defaults(handler=_cmd_demo)
    run = commands.add_parser(
        "run", help="stream a recording (.wav, .npy, .csv) or stdin through a model",
        description="Stream INPUT through MODEL step by step, as on a device. Audio (.wav, or "
                    "16-bit PCM on stdin, raw or after a wav header: arecord -t raw -f S16_LE -r "
                    "16000 -c 1 | lstmlite run kws.lstm --stdin) goes through the front end in "
                    "the model's "
                    "metadata; .npy and .csv rows are the model's input features. Prints one "
                    "line per detection (<seconds> <label> <score>, tab-separated) for models "
                    "with labels and a detection config, one per change of the top label for "
                    "models with labels; a summary on stderr. Several INPUTs each go through "
                    "their own stream (in --jobs worker processes), their lines prefixed by "
                    "the file; a file that fails is one error line, the others still run, "
                    "and the exit status is the number that failed.")
    run.add_argument("model", help="a .lstm file")
    run.add_argument("inputs", nargs="*", metavar="INPUT",
                     help=".wav, .npy (steps, features) or .csv files; with several, each "
                          "runs through its own stream and its lines are prefixed by its "
                          "path")
    run.add_argument("-o", "--output",
                     help="one input: write the per-step outputs to this .npy or .csv "
                          "(written whole at the end; with --stdin a .csv that follows the "
                          "stream, a row per step as it comes, so it holds the steps before "
                          "any error); several inputs: a directory (made if missing) where "
                          "each input's outputs go to <its name>.npy")
    run.add_argument("--jobs", "-j", type=_count(0, 1024), default=1,
                     help="with several inputs: worker processes (1; 0 for one per core). "
                          "A file that fails is reported in one line and the rest still run; "
                          "the exit status is the number that failed")
    run.add_argument("--output-format", choices=("npy", "csv"), default="npy",
                     help="with several inputs: the outputs' format in the -o directory (npy)")
    run.add_argument("--stdin", action="store_true",
                     help="read standard input until it ends: raw 16-bit little-endian mono "
                          "PCM at the front end's rate (e.g. arecord -f S16_LE -r 16000 -c 1 "
                          "-t raw | lstmlite run kws.lstm --stdin), or CSV rows for models "
                          "without a front end")
    run.set_defaults(handler=_cmd_run)
    bench = commands.add_parser(
        "bench", help="time a .lstm model's stream step, float32 and int8, per kernel set")
    bench.add_argument("model", help="a .lstm file")
    bench.add_argument("--steps", type=_count(1, MAX_STEPS), default=2000, help="steps per run (2000)")
    bench.add_argument("--repeats", type=_count(1, MAX_REPEATS), default=15, help="runs per figure (15)")
    bench.set_defaults(handler=_cmd_bench)
    compare = commands.add_parser(
        "compare", help="how far one model's outputs are from another's on your own input",
        description="Run both models over INPUT (a .wav through each model's front end, or "
                    ".npy/.csv rows) and report the candidate's outputs against the "
                    "reference's: max and mean absolute difference (and as a fraction of the "
                    "reference's largest output), cosine, top-1 agreement, and for models with "
                    "labels and detection settings the detections that differ. E.g. what int8 "
                    "costs: lstmlite compare kws.lstm kws-int8.lstm recording.wav")
    compare.add_argument("reference", help="a .lstm file (e.g. the float32 model)")
    compare.add_argument("candidate", help="a .lstm file with the same inputs and outputs "
                                           "(e.g. its int8 version)")
    compare.add_argument("input", help="a .wav, .npy (steps, features) or .csv file")
    compare.set_defaults(handler=_cmd_compare)
    info = commands.add_parser("info", help="describe a .lstm file")
    info.add_argument("file", help="a .lstm file")
    info.set_defaults(handler=_cmd_info)
    convert = commands.add_parser(
        "convert", help="convert an .onnx, .pt2 or .pt model to .lstm, verified",
        description="Convert a model to an .lstm file. The source runs in its own runtime "
                    "(onnxruntime or torch) and the conversion in lstmlite on the same seeded "
                    "random sequences; above the tolerance nothing is written.")
    convert.add_argument("source", help="model.onnx, program.pt2 (torch.export.save), "
                                        "weights.pt (a state_dict) or scripted.pt (torch.jit)")
    convert.add_argument("-o", "--output", help="the .lstm file (default: the source's name "
                                                "with .lstm)")
    convert.add_argument("--labels", help="a text file of class names, one per line, stored "
                                          "in the file's metadata")
    convert.add_argument("--metadata", help="a JSON object merged into the file's metadata, "
                                            "e.g. an audio front end ('frontend') and a "
                                            "detection config ('detection'), checked "
                                            "before anything is written")
    convert.add_argument("--tolerance", type=_positive_number, default=None,
                         help="largest max abs difference accepted (default 1e-4)")
    convert.add_argument("--quantized-tolerance", type=_positive_number, default=None,
                         help="with --weights-dtype float16 or int8: the largest difference "
                              "accepted between the stored model and the float32 conversion, "
                              "as a fraction of the float32 outputs' largest magnitude "
                              "(default 0.1); --tolerance stays the float32 check against the "
                              "source")
    convert.add_argument("--no-verify", action="store_true", help="skip the verification")
    convert.add_argument("--seed", type=_count(0, 2 ** 63 - 1), default=0, help="seed of the verification "
                                                             "inputs (0)")
    convert.add_argument("--weights-dtype", choices=("float32", "float16", "int8"),
                         default="float32", help="how weights are stored (float32); the "
                                                 "stored model is verified too")
    convert.add_argument("--head-activation", default=None,
                         help="state_dict files with a Linear head (required there: a "
                              "state_dict does not record it): the activation after the last "
                              "Linear, one of none (logits), softmax, log_softmax, sigmoid, "
                              "tanh, relu")
    convert.add_argument("--input-size", type=_count(1, MAX_INPUT_SIZE), default=None,
                         help="state_dict and TorchScript files: the input features, "
                              "when the file does not show them (a state_dict's first layer "
                              "must agree)")
    convert.add_argument("--input", action="append", metavar="NAME=VALUE",
                         help="fix an ONNX graph input at conversion (repeatable), e.g. "
                              "--input sr=16000: If nodes whose condition it decides keep the "
                              "branch taken; recorded in the model's signature")
    convert.add_argument("--input-shape", action="append", metavar="NAME=DIMS",
                         help="give an ONNX graph input static dimensions (repeatable), e.g. "
                              "--input-shape input=?,576 (? stays dynamic): the frame a step "
                              "takes where the graph leaves its size dynamic; If nodes on the "
                              "sizes that follow keep the branch taken")
    convert.add_argument("--trust-code", action="store_true",
                         help="allow a TorchScript archive, which runs its own code while it "
                              "is loaded and converted (with this user's rights); without it "
                              "such files are refused. Other files never run code")
    convert.set_defaults(handler=_cmd_convert)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except BrokenPipeError:  # output piped into `head`: stop quietly (before OSError: it is one)
        sys.stdout = open(os.devnull, "w")
        return 0
    except (LstmliteError, OSError) as exc:
        print(f"lstmlite {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
