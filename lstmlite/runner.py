"""`lstmlite run`: a model over a recording or a live stream, as an edge app runs it.

Inputs:
  .wav   mono at the sample rate of the model's front end (metadata "frontend"): 8-, 16-,
         24-, 32-bit PCM or 32-, 64-bit float, WAVE_FORMAT_EXTENSIBLE too (lstmlite.wavfile);
         another rate, more channels or another encoding is refused with the sox command
         that converts it.
  .npy   a (T, features) array of numbers, one row per step.
  .csv   rows of `features` numbers separated by commas (a header line of names is skipped).
  stdin  raw 16-bit little-endian PCM mono (audio models), or CSV rows (the others).

Every step goes through a Stream (and, for audio, the streaming front end) exactly as on a
device; the per-step outputs can be written to a .npy or .csv file. What is printed:
  models with a "segments" detection config (a voice-activity detector): one line per
      speech segment, printed as soon as its end is certain,
      <start seconds>\\t<end seconds>\\tspeech
  models with labels and a "detection" config: one line per detection,
      <seconds>\\t<label>\\t<score>
  models with labels only: one line whenever the top label changes,
      <seconds or step>\\t<label>\\t<score>
  models without labels: nothing but the summary (use -o for the outputs).
"""
from __future__ import annotations

import io
import os
import sys
import time
from typing import BinaryIO, Callable, Iterator, List, Optional, TextIO

import numpy as np

from . import wavfile
from . import features
from .detection import Detector, Segmenter
from .errors import LstmliteError
from .features import METADATA_KEY as FRONTEND_KEY
from .fileio import check_writable_output, open_regular, write_atomic

#: the largest input read whole: 2^28 numbers (a GiB of float32), far beyond any recording
MAX_INPUT_VALUES = 1 << 28
#: audio read from stdin per chunk: 10 ms at 16 kHz, so a detection is printed within a hop
STDIN_CHUNK_BYTES = 320


class RunError(LstmliteError):
    """An input file or stream that `lstmlite run` cannot use."""


def read_wav(path: str, sample_rate: int) -> np.ndarray:
    """The samples of a mono .wav file at `sample_rate` Hz (lstmlite.wavfile: 8-, 16-, 24-,
    32-bit PCM, 32- and 64-bit float, WAVE_FORMAT_EXTENSIBLE); int16 for 16-bit PCM, float32
    in [-1, 1] otherwise."""
    return wavfile.read_wav(path, sample_rate, RunError)


def read_rows(path: str, features: int) -> np.ndarray:
    """(T, features) float32 from a .npy or .csv file."""
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npy":
        with open_regular(path, ".npy file", RunError) as handle:
            try:
                version = np.lib.format.read_magic(handle)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(handle)
            except (ValueError, OSError, SyntaxError) as exc:
                raise RunError(f"{path}: not a .npy file ({exc})") from None
            if dtype.hasobject:
                raise RunError(f"{path}: holds Python objects; expected numbers")
            if int(np.prod(shape)) > MAX_INPUT_VALUES:
                raise RunError(f"{path}: holds {shape} values, more than this reader accepts")
            handle.seek(0)
            try:
                array = np.load(handle, allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise RunError(f"{path}: unreadable .npy file ({exc})") from None
        if array.dtype.kind not in "fiu":
            raise RunError(f"{path}: holds {array.dtype} values; expected numbers")
    elif extension == ".csv":
        with open_regular(path, ".csv file", RunError) as handle:
            text = io.TextIOWrapper(handle, encoding="utf-8", errors="strict")
            array = _parse_csv(text, path, features)
    else:
        raise RunError(f"{path}: expected a .wav, .npy or .csv file, got {extension or 'no'}"
                       f" extension")
    if array.ndim != 2 or array.shape[1] != features:
        raise RunError(f"{path}: expected shape (steps, {features}), got {array.shape}")
    if array.shape[0] == 0:
        raise RunError(f"{path}: has no rows")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise RunError(f"{path}: row {row} holds NaN or infinity")
    return array


def _csv_row(line: str, where: str, features: int) -> Optional[np.ndarray]:
    """One CSV line as float32 numbers; None for a blank line."""
    line = line.strip()
    if not line:
        return None
    fields = line.split(",")
    if len(fields) != features:
        raise RunError(f"{where}: has {len(fields)} values; the model takes {features}")
    try:
        return np.array([float(field) for field in fields], dtype=np.float32)
    except ValueError:
        raise RunError(f"{where}: expected {features} numbers, got {line[:80]!r}") from None


def _csv_rows(text: TextIO, where: str, features: int) -> Iterator[np.ndarray]:
    """The float32 rows of CSV text, as they arrive: a first line of names is a header,
    blank lines are skipped; a row of the wrong width, words, NaN or infinity, or bytes that
    are not UTF-8 raise RunError naming `where` and the line."""
    try:
        for number, line in enumerate(text, 1):
            if number == 1 and line.strip() and not _looks_numeric(line):
                continue  # a header of channel names
            row = _csv_row(line, f"{where}: line {number}", features)
            if row is None:
                continue
            if not np.isfinite(row).all():
                raise RunError(f"{where}: line {number} holds NaN or infinity")
            yield row
    except UnicodeDecodeError:
        raise RunError(f"{where}: not UTF-8 text (a model without a front end reads CSV "
                       f"rows)") from None


def _parse_csv(text: TextIO, path: str, features: int) -> np.ndarray:
    rows: List[np.ndarray] = []
    for row in _csv_rows(text, path, features):
        rows.append(row)
        if len(rows) * features > MAX_INPUT_VALUES:
            raise RunError(f"{path}: more values than this reader accepts")
    return np.array(rows, dtype=np.float32).reshape(len(rows), features)


def _looks_numeric(line: str) -> bool:
    try:
        float(line.split(",")[0])
        return True
    except ValueError:
        return False


def _labels(model) -> Optional[List[str]]:
    """The model's class names when its metadata has one per output, else None."""
    labels = model.metadata.get("labels")
    return labels if isinstance(labels, list) and len(labels) == model.output_size else None


def _step_seconds(model) -> Optional[float]:
    """Seconds per step of a model without a front end (metadata "step_seconds"), or None."""
    seconds = model.metadata.get("step_seconds")
    valid = isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and \
        0 < seconds < float("inf")
    return float(seconds) if valid else None


class Reporter:
    """Turns per-step outputs into the printed lines (see the module docstring)."""

    def __init__(self, model, step_seconds: Optional[float], out: Callable[[str], None],
                 front=None):
        self.labels = _labels(model)
        self.detector = None
        self.segmenter = Segmenter.for_model(model.metadata.get("detection"), front,
                                             model.output_size)
        if self.segmenter is None and self.labels is not None and "detection" in model.metadata:
            self.detector = Detector.from_model(model, step_seconds or 1.0)
        self.step_seconds = step_seconds
        self.sample_rate = front.sample_rate if front is not None else None
        self.out = out
        self.steps = 0
        self.lines = 0
        self._top = -1

    def _segments(self, segments) -> None:
        for start, end in segments:
            self.out(f"{start / self.sample_rate:.3f}\t{end / self.sample_rate:.3f}\tspeech")
            self.lines += 1

    def finish(self, total_samples: Optional[int]) -> None:
        """The end of the input: a segmenter closes its last segment."""
        if self.segmenter is not None and total_samples is not None:
            self._segments(self.segmenter.finish(total_samples))

    def when(self, step: int) -> str:
        if self.step_seconds is None:
            return str(step)
        return f"{(step + 1) * self.step_seconds:.2f}"

    def update(self, outputs: np.ndarray, end_seconds: Optional[float] = None) -> None:
        step = self.steps
        self.steps += 1
        if self.segmenter is not None:
            self._segments(self.segmenter.update(float(outputs[0])))
            return
        if self.labels is None:
            return
        if self.detector is not None:
            hit = self.detector.update(outputs)
            if hit is not None:
                seconds = end_seconds if end_seconds is not None else \
                    (step + 1) * self.detector.frame_seconds
                self.out(f"{seconds:.2f}\t{self.labels[hit[0]]}\t{hit[1]:.3f}")
                self.lines += 1
            return
        top = int(np.argmax(outputs))
        if top != self._top:
            self._top = top
            self.out(f"{self.when(step)}\t{self.labels[top]}\t{outputs[top]:.3f}")
            self.lines += 1


class Progress:
    """A one-line progress bar on stderr, only when stdout is a terminal."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled = total, enabled and total >= 1000
        self._shown = -1

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        percent = 100 * done // self.total
        if percent != self._shown:
            self._shown = percent
            bar = "#" * (percent // 4)
            sys.stderr.write(f"\r[{bar:<25}] {percent:3d}% ({done}/{self.total} steps)")
            if done == self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def _csv_header(model) -> str:
    """The output CSV's first line: the labels, or output_0, output_1, ..."""
    return ",".join(_labels(model) or [f"output_{i}" for i in range(model.output_size)])


def _save_outputs(path: str, outputs: np.ndarray, header: str) -> None:
    extension = os.path.splitext(path)[1].lower()
    if extension == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, outputs, allow_pickle=False)
        write_atomic(path, buffer.getvalue(), RunError)
    else:
        buffer = io.StringIO()
        np.savetxt(buffer, outputs, delimiter=",", fmt="%.7g", header=header, comments="")
        write_atomic(path, buffer.getvalue().encode("utf-8"), RunError)


def check_output(path: Optional[str]) -> None:
    if path is None:
        return
    if os.path.splitext(path)[1].lower() not in (".npy", ".csv"):
        raise RunError(f"{path}: the output must be a .npy or .csv file")
    check_writable_output(path, RunError)


def load_streamable(path: str):
    """The model in a .lstm file, refused unless a stream can step it."""
    from .format import load
    model = load(path)
    if not model.streamable:
        raise RunError(f"{path}: has reverse or bidirectional layers, which need whole "
                       f"sequences; run steps a stream")
    return model


def front_end_for(model, input_path: str):
    """The model's audio front end (LogMel or Chunks) for a .wav input, None for rows (.npy,
    .csv); a .wav for a model without one, or rows for a model with one, is refused."""
    front = features.from_model(model) if FRONTEND_KEY in model.metadata else None
    is_wav = os.path.splitext(input_path)[1].lower() == ".wav"
    if is_wav and front is None:
        raise RunError(f"{input_path}: the model has no audio front end (metadata "
                       f"'{FRONTEND_KEY}'); give its {model.input_size} features per step as "
                       f".npy or .csv")
    if front is not None and not is_wav:
        raise RunError(f"{input_path}: the model takes audio through its front end; give a "
                       f".wav file (or --stdin with 16-bit PCM)")
    return front


def run_file(model, input_path: str, output: Optional[str] = None,
             out: Callable[[str], None] = print, progress: bool = False) -> dict:
    """Streams the recording or rows in `input_path` through `model`; prints the report
    lines; writes the per-step outputs to `output` (.npy or .csv) when given. Returns a
    summary: steps, seconds of input, microseconds per step of the front end and the model."""
    check_output(output)
    front = front_end_for(model, input_path)
    stream = model.stream()
    summary = {"front_end_us": 0.0}
    if front is not None:
        samples = read_wav(input_path, front.sample_rate)
        reporter = Reporter(model, front.frame_seconds, out, front)
        frame_count = front.frame_count(len(samples))
        outputs = np.empty((frame_count, model.output_size), dtype=np.float32)
        show = Progress(frame_count, progress)
        hop = front.hop_length
        step_time = front_time = 0.0
        done = 0
        # hop-sized pieces, as from a microphone; then the end of the signal (a VAD's last
        # partial chunk, zero-padded, as silero-vad's own code does)
        starts = range(0, len(samples), hop)
        for number in range(len(starts) + 1):
            begin = time.perf_counter()
            frames = front.push(samples[starts[number]:starts[number] + hop]) \
                if number < len(starts) else front.flush()
            middle = time.perf_counter()
            for frame in frames:
                stream.step(frame, out=outputs[done])
                done += 1
            step_time += time.perf_counter() - middle
            front_time += middle - begin
            for index in range(done - len(frames), done):
                reporter.update(outputs[index], front.frame_end_seconds(index))
            show(done)
        reporter.finish(len(samples))
        summary.update(seconds=len(samples) / front.sample_rate,
                       front_end_us=front_time / max(done, 1) * 1e6)
    else:
        rows = read_rows(input_path, model.input_size)
        step_seconds = _step_seconds(model)
        reporter = Reporter(model, step_seconds, out)
        outputs = np.empty((rows.shape[0], model.output_size), dtype=np.float32)
        show = Progress(rows.shape[0], progress)
        step_time = 0.0
        for index, row in enumerate(rows):
            begin = time.perf_counter()
            stream.step(row, out=outputs[index])
            step_time += time.perf_counter() - begin
            reporter.update(outputs[index])
            show(index + 1)
        done = rows.shape[0]
        summary.update(seconds=None if step_seconds is None else done * step_seconds)
    summary.update(steps=done, model_us=step_time / max(done, 1) * 1e6, lines=reporter.lines)
    if output is not None:
        _save_outputs(output, outputs[:done], _csv_header(model))
    return summary


#: a wav header on stdin (arecord without -t raw writes one) must end within this many bytes
STDIN_HEADER_LIMIT = 1 << 16


def _read_chunk(source: BinaryIO) -> bytes:
    return source.read1(STDIN_CHUNK_BYTES) if hasattr(source, "read1") else \
        source.read(STDIN_CHUNK_BYTES)


def _after_wav_header(source: BinaryIO, data: bytes, sample_rate: int) -> bytes:
    """The samples that follow a wav header at the start of stdin (`data` holds what has been
    read so far), after checking it declares 16-bit mono PCM at the front end's rate. A
    streamed header's sizes are placeholders (the length is not known when it is written):
    they are ignored, and the samples run to the end of the stream."""
    while True:
        try:
            info, offset, _ = wavfile.parse_header(data, "stdin", RunError)
            break
        except RunError:
            more = _read_chunk(source) if len(data) < STDIN_HEADER_LIMIT else b""
            if not more:
                raise
            data += more
    if (info.format, info.bits, info.channels, info.sample_rate) != \
            (wavfile.WAVE_FORMAT_PCM, 16, 1, sample_rate):
        raise RunError(f"stdin: a wav stream of {info.encoding}, {info.channels} channel(s) at "
                       f"{info.sample_rate} Hz; the model's front end takes 16-bit mono PCM at "
                       f"{sample_rate} Hz, e.g. arecord -t raw -f S16_LE -r {sample_rate} -c 1")
    return data[offset:]


def _pcm_chunks(source: BinaryIO, sample_rate: int) -> Iterator[np.ndarray]:
    """int16 samples from raw little-endian PCM, a few ms at a time; an odd trailing byte is
    kept for the next read. A stream that starts with a wav header (RIFF) is read after it."""
    leftover = _read_chunk(source)
    while 0 < len(leftover) < 4:                   # a pipe may hand over fewer bytes at first
        more = _read_chunk(source)
        if not more:
            break
        leftover += more
    if leftover[:4] == b"RIFF":
        leftover = _after_wav_header(source, leftover, sample_rate)
    while True:
        data = _read_chunk(source) if len(leftover) < 2 else b""
        if not data and len(leftover) < 2:
            if leftover:
                raise RunError("stdin: the PCM stream ended in the middle of a sample (an odd "
                               "number of bytes)")
            return
        data = leftover + data
        usable = len(data) & ~1
        leftover = data[usable:]
        if usable:
            yield np.frombuffer(data[:usable], dtype="<i2")


def run_stdin(model, source: BinaryIO, output: Optional[TextIO] = None,
              out: Callable[[str], None] = print) -> dict:
    """Streams standard input through `model` until it ends: raw 16-bit PCM for models with a
    front end, CSV rows for the others (a decision per frame, printed as it happens). Per-step
    outputs go to `output` as CSV rows when given, each written as it comes (after a header
    line of the labels), so the file follows the stream."""
    front = features.from_model(model) if FRONTEND_KEY in model.metadata else None
    stream = model.stream()
    steps = 0
    if output is not None:
        output.write(_csv_header(model) + "\n")

    def emit(outputs: np.ndarray, end_seconds: Optional[float] = None) -> None:
        reporter.update(outputs, end_seconds)
        if output is not None:
            output.write(",".join(f"{v:.7g}" for v in outputs) + "\n")
            output.flush()

    if front is not None:
        reporter = Reporter(model, front.frame_seconds, out, front)
        total = 0
        for chunk in _pcm_chunks(source, front.sample_rate):
            total += len(chunk)
            for frame in front.push(chunk):
                emit(stream.step(frame), front.frame_end_seconds(steps))
                steps += 1
        for frame in front.flush():
            emit(stream.step(frame), front.frame_end_seconds(steps))
            steps += 1
        reporter.finish(total)
    else:
        reporter = Reporter(model, _step_seconds(model), out)
        text = io.TextIOWrapper(source, encoding="utf-8", errors="strict")
        for row in _csv_rows(text, "stdin", model.input_size):
            emit(stream.step(row))
            steps += 1
    return {"steps": steps, "lines": reporter.lines}


# ---- lstmlite compare -----------------------------------------------------------------------

#: two detections of the same label at most this far apart are the same detection
SAME_DETECTION_SECONDS = 0.1


def input_features(model, input_path: str):
    """(features (T, input_size) float32, seconds per step or None, seconds at the end of each
    step or None): a .wav through the model's own front end, or .npy/.csv rows, as
    `lstmlite run` reads them."""
    front = front_end_for(model, input_path)
    if front is not None:
        X = front.transform(read_wav(input_path, front.sample_rate))
        ends = [front.frame_end_seconds(t) for t in range(X.shape[0])]
        return X, front.frame_seconds, ends
    rows = read_rows(input_path, model.input_size)
    seconds = _step_seconds(model)
    return rows, seconds, None


def _detections(model, outputs: np.ndarray, step_seconds: Optional[float],
                ends: Optional[List[float]]) -> List[tuple]:
    """(seconds, label, score) of every detection `lstmlite run` would print for these
    outputs with `model`'s labels and detection settings."""
    labels = model.metadata["labels"]
    detector = Detector.from_model(model, step_seconds or 1.0)
    found = []
    for step, row in enumerate(outputs):
        hit = detector.update(row)
        if hit is not None:
            seconds = ends[step] if ends is not None else (step + 1) * detector.frame_seconds
            found.append((round(seconds, 2), labels[hit[0]], float(hit[1])))
    return found


def compare_files(reference_path: str, candidate_path: str, input_path: str
                  ) -> List[str]:
    """`lstmlite compare`: the lines reporting how far the candidate model's outputs are from
    the reference's on the user's own input (each model reading it through its own front
    end): lstmlite.compare's figures, and for models with labels and detection settings
    the detections that differ (same label within SAME_DETECTION_SECONDS is the same)."""
    from .format import load
    from .quantize import compare_outputs
    reference, candidate = load(reference_path), load(candidate_path)
    if (reference.input_size, reference.output_size) != (candidate.input_size,
                                                          candidate.output_size):
        raise RunError(f"{candidate_path}: takes {candidate.input_size} and gives "
                       f"{candidate.output_size} values per step; {reference_path} takes "
                       f"{reference.input_size} and gives {reference.output_size}")
    X_reference, step_seconds, ends = input_features(reference, input_path)
    # the same front end (an int8 file of the same model) reads the input once
    X_candidate = X_reference if candidate.metadata.get(FRONTEND_KEY) == \
        reference.metadata.get(FRONTEND_KEY) else input_features(candidate, input_path)[0]
    if X_candidate.shape != X_reference.shape:
        raise RunError(f"{input_path}: gives {X_reference.shape[0]} steps through "
                       f"{reference_path}'s front end and {X_candidate.shape[0]} through "
                       f"{candidate_path}'s")
    expected, actual = reference.run(X_reference), candidate.run(X_candidate)
    report = compare_outputs(expected, actual)
    lines = [f"{candidate_path} against {reference_path} on {input_path} "
             f"({report.steps} steps):", f"  {report}"]
    if _labels(reference) is not None and "detection" in reference.metadata:
        # the candidate's own settings if it has them, else the reference's
        settings = candidate if _labels(candidate) is not None and \
            "detection" in candidate.metadata else reference
        found = _detections(reference, expected, step_seconds, ends)
        other = _detections(settings, actual, step_seconds, ends)
        only_reference, only_candidate = _unmatched(found, other), _unmatched(other, found)
        lines.append(f"  detections: {len(found)} by {reference_path}, {len(other)} by "
                     f"{candidate_path}, {len(found) - len(only_reference)} the same "
                     f"(label, within {SAME_DETECTION_SECONDS:g} s)")
        for name, missing in ((reference_path, only_reference), (candidate_path,
                                                                 only_candidate)):
            for seconds, label, score in missing:
                lines.append(f"  only {name}:\t{seconds:.2f}\t{label}\t{score:.3f}")
    return lines


def _unmatched(these: List[tuple], those: List[tuple]) -> List[tuple]:
    """The detections in `these` with no detection of the same label within
    SAME_DETECTION_SECONDS in `those` (each of `those` matches once)."""
    free = list(those)
    missing = []
    for seconds, label, score in these:
        match = next((other for other in free if other[1] == label and
                      abs(other[0] - seconds) <= SAME_DETECTION_SECONDS + 1e-9), None)
        if match is None:
            missing.append((seconds, label, score))
        else:
            free.remove(match)
    return missing


# ---- many inputs: lstmlite run MODEL INPUT... [-o OUTDIR] [--jobs N] -----------------------

#: the model of a worker process, set once when the worker starts (see run_many)
_worker_model = None


def output_paths(inputs: List[str], directory: Optional[str], extension: str
                 ) -> List[Optional[str]]:
    """Per input, the output file named after it in `directory` (None without one); two
    inputs that would write the same file are refused before anything runs."""
    if directory is None:
        return [None] * len(inputs)
    paths = [os.path.join(directory, os.path.splitext(os.path.basename(path))[0] + extension)
             for path in inputs]
    seen: dict = {}
    for source, path in zip(inputs, paths):
        if path in seen:
            raise RunError(f"{source} and {seen[path]} would both write {path}: give inputs "
                           f"with different names")
        seen[path] = source
    return paths


def score_file(model, input_path: str, output: Optional[str]) -> dict:
    """One input of run_many: its report lines, summary, or the one-line error that stopped
    it (a bad file is a result, not an exception, so the other files still run)."""
    lines: List[str] = []
    try:
        summary = run_file(model, input_path, output, out=lines.append)
        return {"input": input_path, "lines": lines, "summary": summary, "error": None}
    except (LstmliteError, OSError) as exc:
        return {"input": input_path, "lines": lines, "summary": None, "error": str(exc)}


def _start_worker(model) -> None:
    global _worker_model
    _worker_model = model


def _score_in_worker(input_path: str, output: Optional[str]) -> dict:
    return score_file(_worker_model, input_path, output)


class FileProgress:
    """`[#####     ] 12/40 files, 1 failed` on stderr, redrawn in place, when it is a
    terminal."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done, self.failed = total, enabled, 0, 0

    def advance(self, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        self.draw()

    def draw(self) -> None:
        if self.enabled:
            bar = "#" * (25 * self.done // self.total)
            failed = f", {self.failed} failed" if self.failed else ""
            sys.stderr.write(f"\r[{bar:<25}] {self.done}/{self.total} files{failed}")
            sys.stderr.flush()

    def clear(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def run_many(model, inputs: List[str], outputs: List[Optional[str]], jobs: int,
             out: Callable[[str], None] = print, error: Callable[[str], None] = print,
             progress: bool = False) -> List[dict]:
    """Streams each input through its own Stream of `model` (run_file), in `jobs` worker
    processes (1: in this process). Each file's report lines are passed to `out` prefixed by
    its path and a tab, in the order of `inputs`, as soon as the files before it are done;
    a file that fails is reported by `error` in one line and the rest still run. The model
    is sent to each worker once (it pickles as its .lstm bytes). Returns every file's
    result (score_file's dicts) in input order."""
    results: List[Optional[dict]] = [None] * len(inputs)
    show = FileProgress(len(inputs), progress)
    printed = 0

    def finish(index: int, result: dict) -> None:
        nonlocal printed
        results[index] = result
        show.advance(result["error"] is not None)
        while printed < len(results) and results[printed] is not None:
            show.clear()
            done = results[printed]
            for line in done["lines"]:
                out(f"{done['input']}\t{line}")
            if done["error"] is not None:
                error(done["error"])
            printed += 1
            show.draw()

    if jobs <= 1 or len(inputs) == 1:
        for index, (path, output) in enumerate(zip(inputs, outputs)):
            finish(index, score_file(model, path, output))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        # spawn: a worker starts clean whatever threads this process runs (numpy's BLAS)
        with ProcessPoolExecutor(max_workers=min(jobs, len(inputs)),
                                 mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker, initargs=(model,)) as pool:
            futures = {pool.submit(_score_in_worker, path, output): index
                       for index, (path, output) in enumerate(zip(inputs, outputs))}
            for future in as_completed(futures):
                finish(futures[future], future.result())
    show.clear()
    return results  # type: ignore[return-value]
