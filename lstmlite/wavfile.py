"""Reading .wav files as people have them, with numpy alone.

RIFF/WAVE with one 'fmt ' and one 'data' chunk (others, such as LIST or fact, are skipped):

    PCM (format 1)           8-bit unsigned, 16-, 24- and 32-bit signed little-endian
    IEEE float (format 3)    32- and 64-bit
    WAVE_FORMAT_EXTENSIBLE   (format 0xFFFE, what sox writes for 24-bit and for more than two
                             channels) whose sub-format is PCM or IEEE float, as above

16-bit PCM comes back as int16, as it is stored (the front end scales it by 1/32768); every
other encoding comes back as float32 in [-1, 1]: an integer sample divided by 2^(bits - 1),
float samples as stored. Anything else (A-law, mu-law, ADPCM, MP3 in a wav, a sample
width the header contradicts) is refused naming the format and the sox command that writes
a file this reader takes. Every size is checked against the bytes the file holds before
anything is allocated for it.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Type

import numpy as np

from .errors import LstmliteError
from .fileio import open_regular

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
#: the names of formats seen in the wild, for the refusal
FORMAT_NAMES = {0x0002: "Microsoft ADPCM", 0x0006: "A-law", 0x0007: "mu-law",
                0x0011: "IMA ADPCM", 0x0031: "GSM 6.10", 0x0050: "MPEG", 0x0055: "MP3"}
#: WAVE_FORMAT_EXTENSIBLE sub-formats: the format code in the first two bytes of a GUID that
#: ends in this fixed tail (KSDATAFORMAT_SUBTYPE_PCM, _IEEE_FLOAT, ...)
GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
#: the bits per sample this reader takes, per format
READABLE_BITS = {WAVE_FORMAT_PCM: (8, 16, 24, 32), WAVE_FORMAT_IEEE_FLOAT: (32, 64)}
#: a recording read whole: at most this many samples (2^28: hours of audio)
MAX_SAMPLES = 1 << 28


@dataclass
class WavInfo:
    """What a wav header says: the format code (after WAVE_FORMAT_EXTENSIBLE's sub-format),
    sample rate, channels, bits per sample, and the sample count per channel."""
    format: int
    sample_rate: int
    channels: int
    bits: int
    frames: int

    @property
    def encoding(self) -> str:
        kind = "float" if self.format == WAVE_FORMAT_IEEE_FLOAT else "integer PCM"
        return f"{self.bits}-bit {kind}"


def _format_name(code: int) -> str:
    name = FORMAT_NAMES.get(code)
    return f"format {code:#06x}" + (f" ({name})" if name else "")


def read_wav(path: str, sample_rate: int, error: Type[LstmliteError] = LstmliteError
             ) -> np.ndarray:
    """The samples of a mono .wav file at `sample_rate` Hz: int16 for 16-bit PCM, float32 in
    [-1, 1] for the other encodings (see the module docstring). Raises `error` naming the file
    and what is wrong, with the sox command that fixes it where one does."""
    convert = f"sox {path} -r {sample_rate} -c 1 -b 16 -e signed-integer converted.wav"
    with open_regular(path, "wav file", error) as handle:
        size = os.fstat(handle.fileno()).st_size
        data = handle.read(min(size, 64 + 8 * MAX_SAMPLES + (1 << 20)))
    info, start, length = parse_header(data, path, error)
    if info.format not in READABLE_BITS:
        raise error(f"{path}: is {_format_name(info.format)}; this reader takes integer PCM "
                    f"and float wav files: convert it, e.g. {convert}")
    if info.bits not in READABLE_BITS[info.format]:
        raise error(f"{path}: has {info.bits}-bit samples in "
                    f"{'float' if info.format == WAVE_FORMAT_IEEE_FLOAT else 'PCM'}, which "
                    f"this reader does not take: convert it, e.g. {convert}")
    if info.channels != 1:
        raise error(f"{path}: has {info.channels} channels; the model takes one (mono): mix "
                    f"down first, e.g. sox {path} -c 1 mono.wav")
    if info.sample_rate != sample_rate:
        raise error(f"{path}: is {info.sample_rate} Hz; the model's front end takes "
                    f"{sample_rate} Hz (not resampled here: resample first, e.g. sox {path} "
                    f"-r {sample_rate} resampled.wav)")
    width = info.bits // 8
    if info.frames > MAX_SAMPLES:
        raise error(f"{path}: declares {info.frames} samples, more than the {MAX_SAMPLES} "
                    f"this reader accepts")
    held = (len(data) - start) // width
    if held < info.frames:
        raise error(f"{path}: truncated: the header declares {info.frames} samples, the file "
                    f"holds {held}")
    if info.frames == 0:
        raise error(f"{path}: has no samples")
    raw = data[start:start + info.frames * width]
    if info.format == WAVE_FORMAT_IEEE_FLOAT:
        samples = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8")
        if not np.isfinite(samples).all():
            index = int(np.flatnonzero(~np.isfinite(samples))[0])
            raise error(f"{path}: sample {index} is NaN or infinite")
        return samples.astype(np.float32)
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.int16)
    if width == 1:  # 8-bit wav is unsigned, 128 the zero
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 3:  # three little-endian bytes: the top two as int16, the low one unsigned
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        high = triples[:, 1:].copy().view("<i2").reshape(-1).astype(np.int32)
        values = high * 256 + triples[:, 0]
        return (values.astype(np.float64) / (1 << 23)).astype(np.float32)
    return (np.frombuffer(raw, dtype="<i4").astype(np.float64) / (1 << 31)).astype(np.float32)


def parse_header(data: bytes, path: str, error: Type[LstmliteError] = LstmliteError):
    """(WavInfo, offset of the samples, bytes the data chunk declares) from a wav file's
    bytes; the 'fmt ' chunk must come before 'data', as every writer puts it."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        what = "an RF64 file" if data[:4] == b"RF64" else "not a RIFF/WAVE file"
        raise error(f"{path}: not a readable .wav file ({what}); a .wav file starts with "
                    f"RIFF....WAVE")
    position = 12
    fmt = None
    while position + 8 <= len(data):
        chunk_id = data[position:position + 4]
        (chunk_size,) = struct.unpack_from("<I", data, position + 4)
        body = position + 8
        if chunk_id == b"fmt ":
            if chunk_size < 16:
                raise error(f"{path}: the 'fmt ' chunk has {chunk_size} bytes; expected at "
                            f"least 16")
            if body + chunk_size > len(data):
                raise error(f"{path}: truncated: the 'fmt ' chunk declares {chunk_size} "
                            f"bytes, the file holds {len(data) - body}")
            fmt = _parse_fmt(data[body:body + chunk_size], path, error)
        elif chunk_id == b"data":
            if fmt is None:
                raise error(f"{path}: the 'data' chunk comes before any 'fmt ' chunk")
            code, rate, channels, bits, block = fmt
            if block == 0:
                raise error(f"{path}: the 'fmt ' chunk declares 0 bytes per sample frame")
            frames = chunk_size // block
            return WavInfo(code, rate, channels, bits, frames), body, chunk_size
        position = body + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
    raise error(f"{path}: not a readable .wav file (no "
                f"{'data' if fmt is not None else 'fmt '} chunk)")


def _parse_fmt(body: bytes, path: str, error: Type[LstmliteError]):
    """(format code, sample rate, channels, bits per sample, bytes per sample frame)."""
    code, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", body, 0)
    if code == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise error(f"{path}: a WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk of {len(body)} bytes; "
                        f"expected 40")
        guid = body[24:40]
        if guid[2:] != GUID_TAIL:
            raise error(f"{path}: WAVE_FORMAT_EXTENSIBLE with an unknown sub-format "
                        f"{guid.hex()}; convert it, e.g. sox {path} -b 16 -e signed-integer "
                        f"converted.wav")
        code = struct.unpack_from("<H", guid, 0)[0]
    if channels == 0 or rate == 0:
        raise error(f"{path}: the 'fmt ' chunk declares {channels} channels at {rate} Hz")
    if code in READABLE_BITS and block != channels * ((bits + 7) // 8):
        raise error(f"{path}: the 'fmt ' chunk declares {block} bytes per sample frame for "
                    f"{channels} channels of {bits} bits")
    return code, rate, channels, bits, block
