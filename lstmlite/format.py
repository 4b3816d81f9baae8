"""The .lstm file: a deterministic, atomic writer and a validating, zero-copy reader.

The format is specified in docs/FORMAT.md; this module implements it and knows nothing of
ONNX or PyTorch. In short:

    header    64 bytes: magic "LSTMLITE", version, manifest size, data offset and size, CRC32
    manifest  UTF-8 JSON: {"layers": [...], "metadata": {...}, "tensors": [...]}
    padding   zero bytes up to data_offset (a multiple of 64)
    data      tensors, each at a 64-byte aligned offset relative to data_offset

The reader checks every count, size and offset against the bytes that remain before it
reads or allocates, computes shape products with Python ints, and raises FormatError naming
the file, the field or offset, and what was wrong. Float32 and int8 tensors (and int8
scales) become read-only views into one private, 64-byte aligned copy of the file read at
load (never a memory map: a file truncated or rewritten under a mapped model would kill the
process with SIGBUS or change validated weights), so an int8 model holds int8 weights and
runs the int8 kernels; float16 tensors are widened to float32 on load, and
load(compute="float32") dequantizes int8 layers instead.

Resource bounds: the file is read once (its size is the allocation), the manifest is at most
MAX_MANIFEST_BYTES, the tables at most MAX_LAYERS layers and MAX_TENSORS tensors, and every
tensor is used exactly once, so what a load builds is a small multiple of the file's size.
"""
from __future__ import annotations

import json
import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .errors import FormatError, LstmliteError
from .errors import ModelError
from .fileio import open_regular, write_atomic
from .layers import (ACTIVATION_NAMES, DIRECTIONS, DTYPE_IDS, GRU, LSTM, OUTPUTS, PAD_MODES,
                     RNN, Conv1d, Dense, Elementwise, Layer, Magnitude, Mean, Normalize,
                     Scale)
from .model import Model
from .quantize import QuantizedWeight, quantize_rows

MAGIC = b"LSTMLITE"
FORMAT_VERSION = 1
READABLE_VERSIONS = (1,)
HEADER_SIZE = 64
ALIGNMENT = 64
# magic, version, header_size, manifest_size, data_offset, data_size, crc32, alignment
HEADER_STRUCT = struct.Struct("<8sIIQQQII16x")
CRC_OFFSET = 40  # byte offset of the crc32 field, zero while the checksum is computed
MAX_DIMS = 4
# Bounds a reader enforces before it parses or builds anything, so a hostile file is refused
# in milliseconds: a 1000-layer model's manifest is about 1 MB.
MAX_MANIFEST_BYTES = 4 << 20
MAX_FILE_BYTES = 4 << 30  # far past any model a small CPU steps; a sparse 1 TB file is refused
MAX_LAYERS = 4096
MAX_TENSORS = 8 * MAX_LAYERS

# dtype ids are the C enum's (layers.DTYPE_IDS, read from the compiled core) so that the two
# cannot disagree; never reuse a removed id.
_NUMPY_DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "int8": np.dtype("i1")}
DTYPES = {i: (name, _NUMPY_DTYPES[name]) for name, i in DTYPE_IDS.items()}
COMPUTE_CHOICES = (None, "float32")

# Layer type ids are the C enum's (src/lstmlite.h); Normalize and Scale share id 5 and are
# told apart by "mode".
LAYER_TYPE_IDS = {"LSTM": 1, "GRU": 2, "RNN": 3, "Dense": 4, "Normalize": 5, "Scale": 5,
                  "Conv1d": 6, "Magnitude": 7, "Mean": 8, "Elementwise": 9}
DIRECTION_IDS = {name: i for i, name in enumerate(DIRECTIONS)}
OUTPUT_IDS = {name: i for i, name in enumerate(OUTPUTS)}

# Arrays each layer type stores, in file order, and whether they may be absent.
LAYER_TENSORS = {
    1: ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr", "peepholes"),
    2: ("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    3: ("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
    4: ("weight", "bias"),
    5: ("a", "b"),
    6: ("weight", "bias"),
    7: (),
    8: (),
    9: (),
}
# Arrays that may be stored as float16 or int8 (the large matrices); the rest stay float32.
QUANTIZABLE = {"weight_ih", "weight_hh", "weight_hr", "weight"}


# ---- writing ------------------------------------------------------------------------------

def _layer_record(index: int, layer: Layer, names: Dict[str, str]) -> Dict[str, Any]:
    """The layer table entry: every attribute the engine honours, tensors by name."""
    record: Dict[str, Any] = {"type": LAYER_TYPE_IDS[layer.type_name], "tensors": names}
    if layer.recurrent:
        record.update(
            input_size=layer.input_size, hidden_size=layer.hidden_size,
            direction=DIRECTION_IDS[layer.direction], clip=layer.clip,
            activations=[[a.id, a[1], a[2]] for a in layer.activations])
        if layer.output != "sequence":  # absent in every file written before the option
            record["output"] = OUTPUT_IDS[layer.output]
        if isinstance(layer, LSTM):
            record.update(proj_size=layer.proj_size, input_forget=int(layer.input_forget))
        if isinstance(layer, GRU):
            record["linear_before_reset"] = int(layer.linear_before_reset)
    elif isinstance(layer, Dense):
        act = layer.activation
        record.update(in_features=layer.input_size, out_features=layer.output_size,
                      activation=[act.id, act[1], act[2]])
    elif isinstance(layer, Conv1d):
        act = layer.activation
        record.update(in_channels=layer.in_channels, out_channels=layer.out_channels,
                      length=layer.length, kernel_size=layer.kernel_size, stride=layer.stride,
                      dilation=layer.dilation, groups=layer.groups,
                      padding=list(layer.padding),
                      padding_mode=PAD_MODES.index(layer.padding_mode),
                      activation=[act.id, act[1], act[2]])
    elif isinstance(layer, (Magnitude, Mean)):
        record.update(layer.attributes())
    elif isinstance(layer, Elementwise):
        act = layer.activation
        record.update(features=layer.input_size, activation=[act.id, act[1], act[2]])
    else:
        record.update(features=layer.input_size, mode=layer.mode)
    return record


def _file_arrays(layer: Layer) -> Dict[str, Optional[np.ndarray]]:
    arrays = layer.arrays()
    if isinstance(layer, (Normalize, Scale)):  # stored under the C names a and b
        values = list(arrays.values())
        return {"a": values[0], "b": values[1]}
    return arrays


def encode(model: Model, metadata: Optional[Dict[str, Any]] = None,
           weights_dtype: str = "float32") -> bytes:
    """The bytes of a .lstm file for `model`: the same model and arguments always give the
    same bytes. int8 layers (QuantizedWeight matrices) are stored as int8 with their scales.
    weights_dtype "float16" or "int8" stores the float32 layers' weight matrices that way
    (int8 with per-output-channel float32 scales); biases and vectors stay float32."""
    if weights_dtype not in DTYPE_IDS:
        raise FormatError(f"save: weights_dtype must be one of {sorted(DTYPE_IDS)}, got "
                          f"{weights_dtype!r}")
    meta = dict(model.metadata)
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise FormatError(f"save: metadata must be a dict, got {type(metadata).__name__}")
        meta.update(metadata)

    tensors: List[Dict[str, Any]] = []
    blobs: List[bytes] = []
    offset = 0

    def add(name: str, array: np.ndarray, dtype_name: str, scale_name: Optional[str] = None):
        nonlocal offset
        dtype = DTYPES[DTYPE_IDS[dtype_name]][1]
        data = np.ascontiguousarray(array, dtype=dtype).tobytes()
        entry = {"name": name, "dtype": DTYPE_IDS[dtype_name], "shape": list(array.shape),
                 "offset": offset, "size": len(data)}
        if scale_name is not None:
            entry["scale"] = scale_name
        tensors.append(entry)
        padding = -len(data) % ALIGNMENT
        blobs.append(data + b"\0" * padding)
        offset += len(data) + padding

    layers = []
    for index, layer in enumerate(model.layers):
        names = {}
        for role, array in _file_arrays(layer).items():
            if array is None:
                continue
            name = f"layers.{index}.{role}"
            names[role] = name
            if isinstance(array, QuantizedWeight):
                add(name + ".scale", array.scale, "float32")
                add(name, array.q, "int8", scale_name=name + ".scale")
            elif weights_dtype == "float16" and role in QUANTIZABLE:
                if np.abs(array).max() > np.finfo(np.float16).max:
                    raise FormatError(f"save: layer {index} {role} has values beyond float16's "
                                      f"range (65504); save as float32 or int8")
                add(name, array, "float16")
            elif weights_dtype == "int8" and role in QUANTIZABLE:
                q, scale = quantize_rows(array)
                add(name + ".scale", scale, "float32")
                add(name, q, "int8", scale_name=name + ".scale")
            else:
                add(name, array, "float32")
        layers.append(_layer_record(index, layer, names))

    try:
        manifest = json.dumps({"layers": layers, "metadata": meta, "tensors": tensors},
                              sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise FormatError(f"save: metadata must be JSON-serialisable with finite numbers: "
                          f"{exc}") from None
    data_offset = HEADER_SIZE + len(manifest)
    data_offset += -data_offset % ALIGNMENT
    padding = b"\0" * (data_offset - HEADER_SIZE - len(manifest))
    data = b"".join(blobs)
    header = HEADER_STRUCT.pack(MAGIC, FORMAT_VERSION, HEADER_SIZE, len(manifest), data_offset,
                                len(data), 0, ALIGNMENT)
    crc = zlib.crc32(data, zlib.crc32(padding, zlib.crc32(manifest, zlib.crc32(header))))
    header = header[:CRC_OFFSET] + struct.pack("<I", crc) + header[CRC_OFFSET + 4:]
    return header + manifest + padding + data


def save(model: Model, path: "os.PathLike[str] | str", metadata: Optional[Dict[str, Any]] = None,
         weights_dtype: str = "float32") -> None:
    """Writes `path` atomically: a temporary file in the same directory, flushed to disk,
    then renamed over `path`; a failure leaves the old file (or none) and no temporary.
    Refuses a `path` that exists and is not a regular file (a symlink, device, directory).
    The file gets the permissions open(path, "w") would give: an existing file's, else 0666
    less the umask. A model loaded from `path` keeps working: it holds its own copy."""
    payload = encode(model, metadata, weights_dtype)
    write_atomic(os.fspath(path), payload, FormatError)


# ---- reading ------------------------------------------------------------------------------

@dataclass
class TensorInfo:
    name: str
    dtype: str
    shape: Tuple[int, ...]
    offset: int          # relative to the data section
    size: int            # bytes
    scale: Optional[str] = None


@dataclass
class FileInfo:
    """What a .lstm file says about itself, validated."""
    path: str
    file_size: int
    version: int
    manifest_size: int
    data_offset: int
    data_size: int
    checksum_stored: int
    checksum_computed: int
    metadata: Dict[str, Any]
    layers: List[Dict[str, Any]]
    tensors: Dict[str, TensorInfo] = field(default_factory=dict)

    @property
    def checksum_ok(self) -> bool:
        return self.checksum_stored == self.checksum_computed


class _Reader:
    """Validates one file's bytes; every error names the file and the field or offset."""

    def __init__(self, path: str, buffer):
        self.path = path
        self.buffer = buffer
        self.size = len(buffer)

    def fail(self, where: str, problem: str) -> FormatError:
        return FormatError(f"{self.path}: {where}: {problem}")

    # -- header --
    def header(self):
        if self.size < HEADER_SIZE:
            raise self.fail("header", f"truncated: the file has {self.size} bytes, a header "
                                      f"needs {HEADER_SIZE}")
        (magic, version, header_size, manifest_size, data_offset, data_size, crc,
         alignment) = HEADER_STRUCT.unpack_from(self.buffer, 0)
        if magic != MAGIC:
            raise self.fail("offset 0 (magic)", f"expected {MAGIC!r}, found {magic!r}: not an "
                                                f".lstm file")
        if version not in READABLE_VERSIONS:
            raise self.fail("offset 8 (version)",
                            f"the file has format version {version}; this reader reads "
                            f"version{'s' if len(READABLE_VERSIONS) > 1 else ''} "
                            f"{', '.join(map(str, READABLE_VERSIONS))}"
                            + ("; upgrade lstmlite" if version > max(READABLE_VERSIONS) else ""))
        if header_size != HEADER_SIZE:
            raise self.fail("offset 12 (header_size)", f"expected {HEADER_SIZE}, found "
                                                       f"{header_size}")
        if alignment != ALIGNMENT:
            raise self.fail("offset 44 (alignment)", f"expected {ALIGNMENT}, found {alignment}")
        if bytes(self.buffer[48:64]) != b"\0" * 16:
            raise self.fail("offset 48 (reserved)", "expected 16 zero bytes")
        remaining = self.size - HEADER_SIZE
        if manifest_size > remaining:
            raise self.fail("offset 16 (manifest_size)",
                            f"{manifest_size} bytes declared, {remaining} remain after the "
                            f"header (truncated file?)")
        if data_offset % ALIGNMENT:
            raise self.fail("offset 24 (data_offset)", f"{data_offset} is not a multiple of "
                                                       f"{ALIGNMENT}")
        if data_offset < HEADER_SIZE + manifest_size or data_offset - HEADER_SIZE - \
                manifest_size >= ALIGNMENT:
            raise self.fail("offset 24 (data_offset)",
                            f"{data_offset} must be the first multiple of {ALIGNMENT} at or "
                            f"after the manifest's end ({HEADER_SIZE + manifest_size})")
        if data_offset > self.size:
            raise self.fail("offset 24 (data_offset)", f"{data_offset} is past the end of the "
                                                       f"file ({self.size} bytes; truncated?)")
        if data_offset + data_size != self.size:
            what = "truncated: " if data_offset + data_size > self.size else "trailing bytes: "
            raise self.fail("offset 32 (data_size)",
                            f"{what}the data section should end the file at "
                            f"{data_offset + data_size}, the file has {self.size} bytes")
        padding = bytes(self.buffer[HEADER_SIZE + manifest_size:data_offset])
        if padding.strip(b"\0"):
            raise self.fail(f"offset {HEADER_SIZE + manifest_size} (padding)",
                            "expected zero bytes before the data section")
        return version, manifest_size, data_offset, data_size, crc

    def checksum(self) -> int:
        # memoryview slices: slicing the buffer itself would copy the whole file
        with memoryview(self.buffer) as view:
            crc = zlib.crc32(view[:CRC_OFFSET])
            crc = zlib.crc32(b"\0\0\0\0", crc)
            return zlib.crc32(view[CRC_OFFSET + 4:], crc)

    # -- manifest --
    def manifest(self, manifest_size: int) -> Dict[str, Any]:
        if manifest_size > MAX_MANIFEST_BYTES:
            raise self.fail("offset 16 (manifest_size)",
                            f"{manifest_size} bytes; this reader accepts manifests of at most "
                            f"{MAX_MANIFEST_BYTES} bytes")
        raw = bytes(self.buffer[HEADER_SIZE:HEADER_SIZE + manifest_size])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"offset {HEADER_SIZE + exc.start} (manifest)",
                            f"invalid UTF-8: {exc.reason}") from None
        try:
            manifest = json.loads(text, parse_constant=self._reject_constant)
        except RecursionError:
            raise self.fail("manifest", "JSON nested too deeply") from None
        except ValueError as exc:
            raise self.fail("manifest", f"invalid JSON: {exc}") from None
        if not isinstance(manifest, dict):
            raise self.fail("manifest", f"expected a JSON object, found "
                                        f"{type(manifest).__name__}")
        expected = {"layers", "metadata", "tensors"}
        if set(manifest) != expected:
            raise self.fail("manifest", f"expected the keys {sorted(expected)}, found "
                                        f"{sorted(manifest)}")
        if not isinstance(manifest["metadata"], dict):
            raise self.fail("manifest.metadata", "expected a JSON object")
        for key, bound in (("layers", MAX_LAYERS), ("tensors", MAX_TENSORS)):
            if not isinstance(manifest[key], list):
                raise self.fail(f"manifest.{key}", "expected a JSON array")
            if len(manifest[key]) > bound:
                raise self.fail(f"manifest.{key}", f"{len(manifest[key])} records; this "
                                                   f"reader accepts at most {bound}")
        return manifest

    def _reject_constant(self, name: str):
        raise ValueError(f"{name} is not allowed (the format forbids NaN and infinity)")

    # -- tensor table --
    def tensors(self, entries: List[Any], data_size: int) -> Dict[str, TensorInfo]:
        tensors: Dict[str, TensorInfo] = {}
        end_of_previous = 0
        for index, entry in enumerate(entries):
            where = f"manifest.tensors[{index}]"
            if not isinstance(entry, dict):
                raise self.fail(where, "expected a JSON object")
            allowed = {"name", "dtype", "shape", "offset", "size", "scale"}
            if not {"name", "dtype", "shape", "offset", "size"} <= set(entry) <= allowed:
                raise self.fail(where, f"expected the keys name, dtype, shape, offset, size "
                                       f"(and scale), found {sorted(entry)}")
            name = entry["name"]
            if not isinstance(name, str) or not name:
                raise self.fail(where + ".name", "expected a non-empty string")
            where = f"tensor {name!r}"
            if name in tensors:
                raise self.fail(where, "duplicate tensor name")
            dtype_id = entry["dtype"]
            if not _is_int(dtype_id) or dtype_id not in DTYPES:
                raise self.fail(where + " dtype", f"unknown dtype id {dtype_id!r}; known: "
                                f"{', '.join(f'{i} ({n})' for i, (n, _) in DTYPES.items())}")
            shape = entry["shape"]
            if not isinstance(shape, list) or len(shape) > MAX_DIMS or \
                    not all(_is_int(d) and 0 <= d < 2 ** 32 for d in shape):
                raise self.fail(where + " shape", f"expected up to {MAX_DIMS} dimensions, each "
                                                  f"0..2^32-1, found {shape!r:.80}")
            offset, size = entry["offset"], entry["size"]
            for label, value in (("offset", offset), ("size", size)):
                if not _is_int(value) or value < 0:
                    raise self.fail(f"{where} {label}", f"expected a non-negative integer, "
                                                        f"found {value!r:.40}")
            itemsize = DTYPES[dtype_id][1].itemsize
            elements = math.prod(shape)  # Python ints: no overflow
            if elements * itemsize != size:
                raise self.fail(where + " size", f"shape {shape} of {DTYPES[dtype_id][0]} "
                                f"needs {elements * itemsize} bytes, the table says {size}")
            if offset % ALIGNMENT:
                raise self.fail(where + " offset", f"{offset} is not aligned to {ALIGNMENT}")
            if offset < end_of_previous:
                raise self.fail(where + " offset", f"{offset} overlaps or precedes the previous "
                                f"tensor, which ends at {end_of_previous} (tensors must be in "
                                f"order and not overlap)")
            if offset + size > data_size:
                raise self.fail(where + " offset", f"bytes {offset}..{offset + size} lie past "
                                f"the data section's {data_size} bytes")
            scale = entry.get("scale")
            if (scale is not None) != (dtype_id == DTYPE_IDS["int8"]):
                raise self.fail(where + " scale", "int8 tensors need a scale tensor and only "
                                                  "they have one")
            end_of_previous = offset + size
            tensors[name] = TensorInfo(name, DTYPES[dtype_id][0], tuple(shape), offset, size,
                                       scale)
        return tensors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _aligned_buffer(path: str, size: int) -> np.ndarray:
    """A writeable uint8 buffer of `size` bytes starting on a 64-byte boundary (so the
    tensors, at 64-aligned offsets, are aligned for the kernels)."""
    if size > MAX_FILE_BYTES:
        raise FormatError(f"{path}: the file has {size} bytes; this reader loads files of "
                          f"at most {MAX_FILE_BYTES} bytes")
    try:
        storage = np.empty(size + ALIGNMENT, dtype=np.uint8)
    except MemoryError:
        raise FormatError(f"{path}: not enough memory to load its {size} bytes") from None
    start = -storage.ctypes.data % ALIGNMENT
    return storage[start:start + size]


def _read_file(path: str) -> np.ndarray:
    """The whole file, read once into a private read-only aligned buffer. A copy rather than
    a memory map: what happens to the file afterwards cannot reach the model."""
    with open_regular(path, ".lstm file", FormatError) as handle:
        size = os.fstat(handle.fileno()).st_size
        buffer = _aligned_buffer(path, size)
        view = memoryview(buffer)
        filled = 0
        while filled < size:
            count = handle.readinto(view[filled:])
            if not count:
                raise FormatError(f"{path}: the file shrank from {size} to {filled} bytes "
                                  f"while being read")
            filled += count
    buffer.flags.writeable = False
    return buffer


def read_info(path: "os.PathLike[str] | str", verify_checksum: bool = True
              ) -> Tuple[FileInfo, Any]:
    """Validates the header, manifest and tensor table of a file; returns its FileInfo and
    the buffer (a private copy of the file) the tensors live in."""
    path = os.fspath(path)
    return _validated_info(path, _read_file(path), verify_checksum)


def _validated_info(path: str, buffer: np.ndarray, verify_checksum: bool = True
                    ) -> Tuple[FileInfo, Any]:
    """read_info() on bytes already in an aligned read-only buffer; `path` names them in
    errors."""
    reader = _Reader(path, buffer)
    version, manifest_size, data_offset, data_size, crc = reader.header()
    computed = reader.checksum()
    if verify_checksum and computed != crc:
        raise reader.fail("offset 40 (crc32)", f"checksum mismatch: the file says "
                                               f"{crc:#010x}, its bytes give {computed:#010x} "
                                               f"(damaged file)")
    manifest = reader.manifest(manifest_size)
    tensors = reader.tensors(manifest["tensors"], data_size)
    info = FileInfo(path, reader.size, version, manifest_size, data_offset, data_size, crc,
                    computed, manifest["metadata"], manifest["layers"], tensors)
    return info, buffer


def _raw_tensor(info: FileInfo, buffer, tensor: TensorInfo) -> np.ndarray:
    """A read-only view of a validated tensor's bytes in the map, with its dtype and shape."""
    dtype = DTYPES[DTYPE_IDS[tensor.dtype]][1]
    return np.frombuffer(buffer, dtype=dtype, count=math.prod(tensor.shape),
                         offset=info.data_offset + tensor.offset).reshape(tensor.shape)


def _int8_tensor(reader: _Reader, info: FileInfo, buffer, tensor: TensorInfo
                 ) -> QuantizedWeight:
    """An int8 tensor and its scales as a QuantizedWeight of views into the map. The table is
    checked here (a float32 scale tensor of shape shape[:-1]); the values (q in -127..127,
    scales finite and positive) are checked once, by QuantizedWeight."""
    where = f"tensor {tensor.name!r}"
    scale_info = info.tensors.get(tensor.scale)
    if scale_info is None:
        raise reader.fail(where + " scale", f"names tensor {tensor.scale!r}, which the tensor "
                                            f"table does not have")
    if scale_info.dtype != "float32":
        raise reader.fail(where + " scale", f"the scale tensor {tensor.scale!r} must be "
                                            f"float32, found {scale_info.dtype}")
    if len(tensor.shape) < 2:
        raise reader.fail(where, f"an int8 tensor is a matrix (rows, cols), found shape "
                                 f"{list(tensor.shape)}")
    if scale_info.shape != tensor.shape[:-1]:
        raise reader.fail(where + " scale", f"expected shape {tensor.shape[:-1]} (one per "
                                            f"output channel), found {scale_info.shape}")
    try:
        # on a big-endian host QuantizedWeight converts the little-endian scales
        return QuantizedWeight(_raw_tensor(info, buffer, tensor),
                               _raw_tensor(info, buffer, scale_info),
                               f"{where} (scale {tensor.scale!r})")
    except ModelError as exc:
        raise FormatError(f"{reader.path}: {exc}") from None


def _tensor_array(reader: _Reader, info: FileInfo, buffer, name: str, where: str,
                  keep_int8: bool = False):
    """The array of a tensor: a read-only view into the map for float32 tensors, a converted
    copy for float16. int8 tensors become a QuantizedWeight of views into the map when
    keep_int8, else a dequantized float32 copy."""
    tensor = info.tensors.get(name)
    if tensor is None:
        raise reader.fail(where, f"names tensor {name!r}, which the tensor table does not have")
    if tensor.dtype == "int8":
        weight = _int8_tensor(reader, info, buffer, tensor)
        return weight if keep_int8 else weight.dequantize()
    dtype = DTYPES[DTYPE_IDS[tensor.dtype]][1]
    array = _raw_tensor(info, buffer, tensor)
    if tensor.dtype != "float32" or dtype != np.dtype(np.float32):
        array = array.astype(np.float32)  # float16, or float32 on a big-endian host
    if not np.isfinite(array).all():
        raise reader.fail(f"tensor {name!r}", "contains NaN or infinity, which the format "
                                              "forbids")
    return array


def _build_layer(reader: _Reader, info: FileInfo, buffer, index: int, record: Any,
                 compute: Optional[str] = None) -> Layer:
    where = f"manifest.layers[{index}]"
    if not isinstance(record, dict):
        raise reader.fail(where, "expected a JSON object")
    type_id = record.get("type")
    if not _is_int(type_id) or type_id not in LAYER_TENSORS:
        raise reader.fail(where + ".type", f"unknown layer type id {type_id!r}; known: 1 "
                                           f"(LSTM), 2 (GRU), 3 (RNN), 4 (Dense), 5 (Normalize), "
                                           f"6 (Conv1d), 7 (Magnitude), 8 (Mean), "
                                           f"9 (Elementwise)")
    names = record.get("tensors")
    if not isinstance(names, dict) or not all(isinstance(v, str) for v in names.values()):
        raise reader.fail(where + ".tensors", "expected an object of tensor names")
    unknown = set(names) - set(LAYER_TENSORS[type_id])
    if unknown:
        raise reader.fail(where + ".tensors", f"unknown roles {sorted(unknown)}; this layer "
                                              f"type has {list(LAYER_TENSORS[type_id])}")
    # A layer computes in int8 when every weight matrix it stores is int8 (and the caller did
    # not ask for float32); otherwise its int8 matrices are dequantized.
    matrices = [name for role, name in names.items() if role in QUANTIZABLE]
    keep_int8 = compute is None and bool(matrices) and all(
        name in info.tensors and info.tensors[name].dtype == "int8" for name in matrices)
    arrays = {role: _tensor_array(reader, info, buffer, name, f"{where}.tensors.{role}",
                                  keep_int8=keep_int8 and role in QUANTIZABLE)
              for role, name in names.items()}

    attributes = {k: v for k, v in record.items() if k not in ("type", "tensors")}
    expected_keys = {
        1: {"input_size", "hidden_size", "direction", "clip", "activations", "proj_size",
            "input_forget"},
        2: {"input_size", "hidden_size", "direction", "clip", "activations",
            "linear_before_reset"},
        3: {"input_size", "hidden_size", "direction", "clip", "activations"},
        4: {"in_features", "out_features", "activation"},
        5: {"features", "mode"},
        6: {"in_channels", "out_channels", "length", "kernel_size", "stride", "dilation",
            "groups", "padding", "padding_mode", "activation"},
        7: {"features", "size", "real", "imag", "rows", "row_stride"},
        8: {"channels", "length"},
        9: {"features", "activation"},
    }[type_id]
    if type_id in (1, 2, 3) and "output" in attributes:
        expected_keys = expected_keys | {"output"}  # optional: "sequence" when absent
    if set(attributes) != expected_keys:
        raise reader.fail(where, f"expected the attributes {sorted(expected_keys)}, found "
                                 f"{sorted(attributes)}")

    def flag(key):
        value = attributes[key]
        if value not in (0, 1) or not _is_int(value):
            raise reader.fail(f"{where}.{key}", f"expected 0 or 1, found {value!r:.40}")
        return bool(value)

    def activation(value, key):
        if not (isinstance(value, list) and len(value) == 3 and _is_int(value[0])
                and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        for v in value[1:])):
            raise reader.fail(f"{where}.{key}", f"expected [id, alpha, beta], found "
                                                f"{value!r:.60}")
        if value[0] not in ACTIVATION_NAMES:
            raise reader.fail(f"{where}.{key}", f"unknown activation id {value[0]}; known: "
                                                f"0..{len(ACTIVATION_NAMES) - 1}")
        return (ACTIVATION_NAMES[value[0]], value[1], value[2])

    try:
        if type_id in (1, 2, 3):
            direction = attributes["direction"]
            if not _is_int(direction) or not 0 <= direction < len(DIRECTIONS):
                raise reader.fail(where + ".direction", f"expected 0 (forward), 1 (reverse) or "
                                                        f"2 (bidirectional), found {direction!r}")
            acts = attributes["activations"]
            if not isinstance(acts, list):
                raise reader.fail(where + ".activations", "expected a list")
            clip = attributes["clip"]
            if clip is not None and (not isinstance(clip, (int, float)) or isinstance(clip, bool)):
                raise reader.fail(where + ".clip", f"expected a number or null, found {clip!r}")
            output = attributes.get("output", OUTPUT_IDS["sequence"])
            if not _is_int(output) or not 0 <= output < len(OUTPUTS):
                raise reader.fail(where + ".output", f"expected 0 (sequence) or 1 (final), "
                                                     f"found {output!r:.40}")
            common = dict(clip=clip, direction=DIRECTIONS[direction], output=OUTPUTS[output],
                          activations=[activation(a, f"activations[{i}]")
                                       for i, a in enumerate(acts)])
            weights = [arrays.get(k) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            if type_id == 1:
                layer = LSTM(*weights, weight_hr=arrays.get("weight_hr"),
                             peepholes=arrays.get("peepholes"),
                             input_forget=flag("input_forget"), **common)
                declared = {"proj_size": attributes["proj_size"]}
                actual = {"proj_size": layer.proj_size}
            elif type_id == 2:
                layer = GRU(*weights, linear_before_reset=flag("linear_before_reset"), **common)
                declared, actual = {}, {}
            else:
                layer = RNN(*weights, **common)
                declared, actual = {}, {}
            declared.update(input_size=attributes["input_size"],
                            hidden_size=attributes["hidden_size"])
            actual.update(input_size=layer.input_size, hidden_size=layer.hidden_size)
        elif type_id == 4:
            layer = Dense(arrays.get("weight"), arrays.get("bias"),
                          activation(attributes["activation"], "activation"))
            declared = {"in_features": attributes["in_features"],
                        "out_features": attributes["out_features"]}
            actual = {"in_features": layer.input_size, "out_features": layer.output_size}
        elif type_id == 6:
            padding, mode = attributes["padding"], attributes["padding_mode"]
            if not (isinstance(padding, list) and len(padding) == 2 and
                    all(_is_int(p) and p >= 0 for p in padding)):
                raise reader.fail(where + ".padding", f"expected [begin, end], found "
                                                      f"{padding!r:.40}")
            if not _is_int(mode) or not 0 <= mode < len(PAD_MODES):
                raise reader.fail(where + ".padding_mode", f"expected 0..{len(PAD_MODES) - 1} "
                                                           f"({', '.join(PAD_MODES)}), found "
                                                           f"{mode!r:.40}")
            geometry = {key: attributes[key] for key in ("length", "stride", "dilation",
                                                         "groups", "in_channels",
                                                         "kernel_size")}
            for key, value in geometry.items():
                if not _is_int(value):
                    raise reader.fail(f"{where}.{key}", f"expected an integer, found "
                                                        f"{value!r:.40}")
            weight = arrays.get("weight")
            if weight is not None and getattr(weight, "ndim", 0) != 2:
                raise reader.fail(where + ".tensors.weight", f"expected a 2-D matrix, found "
                                                             f"shape {weight.shape}")
            layer = Conv1d(weight, arrays.get("bias"), padding=tuple(padding),
                           padding_mode=PAD_MODES[mode],
                           activation=activation(attributes["activation"], "activation"),
                           **geometry)
            declared = {"out_channels": attributes["out_channels"]}
            actual = {"out_channels": layer.out_channels}
        elif type_id == 9:
            features = attributes["features"]
            if not _is_int(features):
                raise reader.fail(where + ".features", f"expected an integer, found "
                                                       f"{features!r:.40}")
            layer = Elementwise(features, activation(attributes["activation"], "activation"))
            declared, actual = {}, {}
        elif type_id in (7, 8):
            values = {key: attributes[key] for key in expected_keys}
            for key, value in values.items():
                if not _is_int(value):
                    raise reader.fail(f"{where}.{key}", f"expected an integer, found "
                                                        f"{value!r:.40}")
            layer = Magnitude(**values) if type_id == 7 else Mean(**values)
            declared, actual = {}, {}
        else:
            mode = attributes["mode"]
            if mode not in (0, 1) or not _is_int(mode):
                raise reader.fail(where + ".mode", f"expected 0 (mean/std) or 1 (scale/offset), "
                                                   f"found {mode!r}")
            if "a" not in arrays or "b" not in arrays:
                raise reader.fail(where + ".tensors", "expected tensors a and b")
            layer = (Normalize if mode == 0 else Scale)(arrays["a"], arrays["b"])
            declared = {"features": attributes["features"]}
            actual = {"features": layer.input_size}
    except FormatError:
        raise
    except LstmliteError as exc:  # shapes that contradict each other, zero std, ...
        raise reader.fail(where, str(exc)) from None
    for key, value in declared.items():
        if not _is_int(value) or value != actual[key]:
            raise reader.fail(f"{where}.{key}", f"the layer table says {value!r:.40}, the "
                                                f"tensor shapes say {actual[key]}")
    return layer


def load(path: "os.PathLike[str] | str", compute: Optional[str] = None) -> Model:
    """Reads a .lstm file: validates everything, then builds the Model on read-only views into
    a memory map of the file (float32 and int8 tensors are not copied).

    compute: None (default) runs each layer in the dtype its weights are stored in: layers
    stored as int8 keep int8 weights in memory and run the int8 kernels; float16 weights are
    widened to float32. "float32" dequantizes int8 layers on load (more memory, float32
    kernels, the exact values q * scale).
    Raises FormatError, naming the file and the field or offset, for any file that is not a
    valid .lstm file."""
    if compute not in COMPUTE_CHOICES:
        raise FormatError(f"load: compute must be None (as stored) or 'float32', got "
                          f"{compute!r}")
    path = os.fspath(path)
    try:
        info, buffer = read_info(path)
    except OSError as exc:
        raise FormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{path}: cannot map the file: {exc}") from None
    return model_from_info(info, buffer, compute)


def loads(data: "bytes | bytearray | memoryview", compute: Optional[str] = None,
          name: str = "<bytes>") -> Model:
    """load() on the bytes of a .lstm file held in memory (what encode() returns, a file read
    elsewhere, a pickled Model): the same checks, the same Model. The bytes are copied once
    into a private aligned buffer; `name` stands for the file in error messages."""
    if compute not in COMPUTE_CHOICES:
        raise FormatError(f"loads: compute must be None (as stored) or 'float32', got "
                          f"{compute!r}")
    try:
        source = memoryview(data).cast("B")
    except TypeError:
        raise FormatError(f"{name}: expected the bytes of a .lstm file, got "
                          f"{type(data).__name__}") from None
    buffer = _aligned_buffer(name, source.nbytes)
    buffer[:] = np.frombuffer(source, dtype=np.uint8)
    buffer.flags.writeable = False
    info, buffer = _validated_info(name, buffer)
    return model_from_info(info, buffer, compute)


def _check_single_use(reader: _Reader, info: FileInfo) -> None:
    """Every tensor has exactly one user: one layer role, or one int8 tensor as its scale.
    The writer never shares tensors; a file that does (400 layers naming one tensor, a
    tensor that is its own scale) would make the reader convert the same bytes many times,
    so it is refused before anything is built."""
    users: Dict[str, List[str]] = {}
    for index, record in enumerate(info.layers):
        names = record.get("tensors") if isinstance(record, dict) else None
        if isinstance(names, dict):
            for role, name in names.items():
                if isinstance(name, str):
                    users.setdefault(name, []).append(f"layers[{index}].{role}")
    for tensor in info.tensors.values():
        if tensor.scale is not None:
            users.setdefault(tensor.scale, []).append(f"the scale of {tensor.name!r}")
    for name, where in users.items():
        if len(where) > 1:
            shown = ", ".join(where[:3]) + (f" and {len(where) - 3} more"
                                            if len(where) > 3 else "")
            raise reader.fail(f"tensor {name!r}", f"used {len(where)} times ({shown}); each "
                                                  f"tensor must have exactly one user")


def model_from_info(info: FileInfo, buffer, compute: Optional[str] = None) -> Model:
    """The Model of a file read_info() has validated (the rest of load())."""
    reader = _Reader(info.path, buffer)
    if not info.layers:
        raise reader.fail("manifest.layers", "a model needs at least one layer")
    _check_single_use(reader, info)
    layers = [_build_layer(reader, info, buffer, i, record, compute)
              for i, record in enumerate(info.layers)]
    used = {name for record in info.layers for name in record["tensors"].values()}
    used |= {t.scale for t in info.tensors.values() if t.scale}
    unused = sorted(set(info.tensors) - used)
    if unused:
        raise reader.fail("manifest.tensors", f"tensors no layer uses: {unused[:5]}")
    try:
        model = Model(layers, metadata=info.metadata)
    except LstmliteError as exc:
        raise reader.fail("manifest.layers", str(exc)) from None
    model.source = info
    return model
