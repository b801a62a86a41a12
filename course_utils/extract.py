"""Safe extraction and writing: nothing outside the target, and every result whole or absent."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock

from course_utils.download import DownloadError

CHUNK = 1 << 20
# A zip bomb unpacks to far more than it weighs. The course's archives are JPEGs, which do not
# compress (about 1:1); a CSV packs at most about 10:1. So an archive may unpack to 50 times its
# own size, and any archive to 256 MiB (small zips of text), and not one byte more.
MAX_RATIO = 50
MIN_LIMIT = 256 << 20
CANNOT_WRITE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
Member = tuple[zipfile.ZipInfo, tuple[str, ...]]  # an entry and its path, `.` parts left out


class UnsafeArchiveError(ValueError):
    """An archive entry would escape the target folder, is a link, a duplicate, or a zip bomb."""


def unpack_limit(archive: Path) -> int:
    """The most bytes `archive` may unpack to (MAX_RATIO × its size, at least MIN_LIMIT)."""
    return max(MAX_RATIO * Path(archive).stat().st_size, MIN_LIMIT)


def remove_stale(target: Path) -> None:
    """Remove the temporaries a killed run left beside `target` (call it holding the lock)."""
    for stale in target.parent.glob(f".{target.name}.partial-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _no_space(err: OSError, target: Path) -> OSError:
    """A full disk or a read-only folder, said with what to do about it."""
    return OSError(
        err.errno,
        f"Could not write {target} ({err.strerror}): free some disk space there, or point "
        f"$COURSE_DATA_DIR at a writable folder with room, and run again.",
    )


def build_folder(target: Path, fill: Callable[[Path], object]) -> Path:
    """Make folder `target` whole or not at all, one process at a time, by `fill`ing a temporary.

    `fill` writes a fresh temporary folder beside `target`, which then takes its name
    (os.replace). A process that waited for the lock uses what the other built.
    """
    target = Path(target)
    if target.is_dir():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(target.with_name(f".{target.name}.lock")):
            if target.is_dir():  # another process built it while this one waited
                return target
            remove_stale(target)
            partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
            try:
                fill(partial)
                os.replace(partial, target)
            finally:
                shutil.rmtree(partial, ignore_errors=True)  # gone already if it became `target`
    except OSError as err:
        if err.errno not in CANNOT_WRITE:
            raise
        raise _no_space(err, target) from err
    return target


def write_atomically(dest: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file under a unique temporary name beside `dest`, then rename it: whole or absent."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.partial-", dir=dest.parent)
    try:
        with open(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(name, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def _is_junk(parts: tuple[str, ...]) -> bool:
    """macOS metadata that zips often carry."""
    return parts[0] == "__MACOSX" or parts[-1] == ".DS_Store" or parts[-1].startswith("._")


def _refuse(archive: Path, what: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"{archive.name} {what}; refusing to extract it. It is not the published archive: "
        f"delete {archive} and download it again."
    )


def _checked_members(zf: zipfile.ZipFile, archive: Path) -> list[Member]:
    """The entries to extract, each with its path parts; raises before anything is written."""
    members, files, folders = [], {}, set()
    for info in zf.infolist():
        raw = info.filename.replace("\\", "/")
        parts = tuple(p for p in raw.split("/") if p not in ("", "."))  # `./a/b.jpg` is `a/b.jpg`
        if raw.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
            what = f"holds an entry that would be written outside the target folder: {raw!r}"
            raise _refuse(archive, what)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _refuse(archive, f"holds a symbolic link {info.filename!r}")
        if not parts or _is_junk(parts):
            continue
        name = "/".join(parts)
        if info.is_dir():
            folders.add(name)  # a folder named twice is harmless
        elif name in files:
            raise _refuse(archive, f"holds two entries named {name!r}: {files[name]!r} and {raw!r}")
        else:
            files[name] = raw
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
        members.append((info, parts))
    if clash := sorted(folders & files.keys()):
        raise _refuse(archive, f"holds both a file and a folder named {clash[0]!r}")
    declared = sum(info.file_size for info, _ in members)
    if declared > (limit := unpack_limit(archive)):
        raise _refuse(archive, f"would unpack to {declared:,} bytes, over the {limit:,} allowed")
    return members


def _copy_members(zf: zipfile.ZipFile, members: list[Member], folder: Path, archive: Path) -> None:
    """Copy entries into `folder`, counting the bytes really unpacked against the limit."""
    budget = limit = unpack_limit(archive)
    for info, parts in members:
        dest = folder.joinpath(*parts)
        if info.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as source, open(dest, "wb") as out:
            while chunk := source.read(CHUNK):
                budget -= len(chunk)
                if budget < 0:  # more than the entries declare: never trust the header
                    raise _refuse(archive, f"unpacks to more than the {limit:,} bytes allowed")
                out.write(chunk)


def _extract_into(archive: Path, folder: Path) -> None:
    """Every checked entry of `archive` into `folder`; a damaged archive says download again."""
    try:
        with zipfile.ZipFile(archive) as zf:
            _copy_members(zf, _checked_members(zf, archive), folder, archive)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:  # truncated, bad CRC, bad deflate
        raise DownloadError(
            f"{archive} is damaged ({err}); delete it and download it again."
        ) from err


def safe_extract(archive: Path, target: Path) -> Path:
    """Extract a zip into folder `target` (skipping macOS junk), whole or not at all.

    Absolute paths, `..`, links, duplicate names and more than `unpack_limit` bytes are refused
    (UnsafeArchiveError); a damaged archive raises DownloadError. Two processes may ask at once.
    """
    return build_folder(target, lambda folder: _extract_into(Path(archive), folder))
