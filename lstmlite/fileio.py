"""Reading and writing files the user names, safely.

Every file lstmlite reads (a .lstm model, an ONNX or PyTorch source, a labels file) goes through
open_regular(): it opens without blocking and refuses anything but a regular file, so a FIFO,
a device or a directory given as a model fails at once with a message instead of hanging in
open() or reading /dev/zero forever. Every file lstmlite writes goes through write_atomic():
a temporary file in the same directory, flushed, then renamed over the target, so a failure
never leaves a half-written file; a target that exists and is not a regular file (a symlink,
a device, a directory) is refused rather than replaced; the new file gets the permissions
open(path, "w") would give it: an existing file's mode, else 0666 less the umask.
"""
from __future__ import annotations

import os
import secrets
import stat
from typing import BinaryIO, Optional, Type

from .errors import LstmliteError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def describe_kind(mode: int) -> str:
    """'a directory', 'a FIFO (named pipe)', ... for a st_mode that is not a regular file."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str, what: str = "file",
                 error: Type[LstmliteError] = LstmliteError) -> BinaryIO:
    """Opens `path` for reading in binary mode, refusing (with `error`, naming the path and
    what it is) anything that is not a regular file. O_NONBLOCK keeps open() of a FIFO from
    waiting for a writer; it has no effect on the regular file that is returned."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | \
        getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{path}: the {what} is {describe_kind(mode)}, expected a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str, what: str = "file", error: Type[LstmliteError] = LstmliteError,
                 limit: Optional[int] = None) -> bytes:
    """The bytes of a regular file (see open_regular); refuses files larger than `limit`."""
    with open_regular(path, what, error) as handle:
        size = os.fstat(handle.fileno()).st_size
        if limit is not None and size > limit:
            raise error(f"{path}: the {what} has {size} bytes, more than the {limit} this "
                        f"reader accepts")
        data = handle.read(size if limit is None else limit + 1)
    if limit is not None and len(data) > limit:
        raise error(f"{path}: the {what} grew past {limit} bytes while being read")
    return data


def check_output_path(path: str, error: Type[LstmliteError] = LstmliteError) -> Optional[int]:
    """Refuses an output path that exists and is not a regular file (a symlink, device, FIFO,
    directory): writing would replace it, or write through it somewhere else. Returns the
    permission bits of the regular file already there, or None if there is none."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise error(f"{path}: cannot write here: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise error(f"{path}: exists and is {describe_kind(mode)}; lstmlite writes only "
                    f"regular files and does not replace other kinds")
    return stat.S_IMODE(mode)


def check_writable_output(path: str, error: Type[LstmliteError] = LstmliteError) -> None:
    """Everything about an output path that can be known before the work that fills it:
    check_output_path's refusals, a directory that does not exist or is not a directory, and
    one this process cannot create files in."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        what = "does not exist" if not os.path.lexists(directory) else "is not a directory"
        raise error(f"{path}: cannot write here: the directory {directory} {what}")
    check_output_path(path, error)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise error(f"{path}: cannot write here: no permission to create files in {directory}")


def write_atomic(path: str, payload: bytes, error: Type[LstmliteError] = LstmliteError) -> None:
    """Writes `payload` to `path` atomically (temporary file in the same directory, fsync,
    rename). An existing regular file keeps its permission bits; a new one gets 0666 less the
    process's umask, as open(path, "w") would."""
    path = os.fspath(path)
    existing_mode = check_output_path(path, error)
    directory = os.path.dirname(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | \
        getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = os.path.join(directory, f".{os.path.basename(path)}."
                                            f"{secrets.token_hex(6)}.tmp")
        try:
            # 0o666: the kernel applies the umask, exactly as for open(path, "w")
            fd = os.open(temporary, flags, 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise error(f"{path}: cannot write in {directory}: {exc.strerror or exc}") from None
    else:
        raise error(f"{path}: cannot create a temporary file in {directory}")
    try:
        with os.fdopen(fd, "wb") as handle:
            if existing_mode is not None and hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), existing_mode)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException as exc:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise error(f"{path}: writing failed: {exc.strerror or exc}") from None
        raise
