"""A remote file: where it is published, and what it must be before it is used (its checksums,
or where none is published its kind: a zip's CRCs, a CSV's header and last line); a stamp
remembers a file that passed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
# A base URL tried before the published hosts, laid out like data/ (ham10000/…, chest_xray/…,
# medmnist/…) plus weights/ for ImageNet weight files; what it serves is verified the same way.
MIRROR_ENV = "COURSE_MIRROR"


@dataclass(frozen=True)
class RemoteFile:
    """A file to fetch: its name on disk, URLs (first, then mirrors), checksum and size."""

    name: str
    urls: tuple[str, ...]
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None
    sha256_prefix: str | None = None  # torchvision's weight files carry one in their names
    columns: tuple[str, ...] = ()  # a CSV without a checksum must at least have these
    mirror_path: str = ""  # where a COURSE_MIRROR keeps it, e.g. "ham10000/<name>"

    def urls_to_try(self) -> tuple[str, ...]:
        """$COURSE_MIRROR's copy first, when that is set, then the published URLs."""
        mirror = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
        own = f"{mirror}/{self.mirror_path or self.name}" if mirror else None
        return (own, *self.urls) if own else self.urls


def file_hash(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, remote: RemoteFile) -> str | None:
    """None if the file is what `remote` promises, else what is wrong with it."""
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):  # a rate-limit, error or sign-in page
        return "the host sent a web page (HTML), not the file: it may limit requests; try later"
    size = path.stat().st_size
    if remote.size is not None and size != remote.size:
        return f"size {size:,} bytes, expected {remote.size:,}"
    for algorithm in ("md5", "sha256"):
        expected = getattr(remote, algorithm)
        if expected and (actual := file_hash(path, algorithm)) != expected:
            return f"{algorithm} {actual}, expected {expected}"
    prefix = remote.sha256_prefix
    if prefix and not (actual := file_hash(path, "sha256")).startswith(prefix):
        return f"sha256 {actual}, expected one starting {prefix}"
    if remote.name.endswith((".zip", ".npz")) and not (remote.md5 or remote.sha256):
        try:  # no published checksum: at least every member must read back with a good CRC
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, EOFError, OSError) as err:
            return f"not a readable zip archive ({err}); truncated?"
        if bad:
            return f"zip member {bad} is damaged"
    if remote.name.endswith(".csv") and not (remote.md5 or remote.sha256):
        return _csv_problem(path, remote.columns)
    return None


def _csv_problem(path: Path, columns: tuple[str, ...]) -> str | None:
    """What is wrong with a CSV that has no published checksum: its header, or a cut last line."""
    text = path.read_bytes()
    header = text.split(b"\n", 1)[0].decode("utf-8", "replace").strip().split(",")
    missing = [c for c in columns if c not in header]
    if missing:
        return f"its header lacks the column(s) {missing} (it has {header[:8]})"
    if not text.endswith(b"\n") or text.count(b"\n") < 2:
        return "it ends in the middle of a line: truncated?"
    return None


def _stamp(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified")


def _fingerprint(path: Path) -> str:
    info = path.stat()
    return f"{info.st_size} {info.st_mtime_ns}"


def write_stamp(path: Path) -> None:
    """Remember that `path` passed verification (not possible on a read-only stick: fine)."""
    with contextlib.suppress(OSError):
        _stamp(path).write_text(_fingerprint(path))


def verify_once(path: Path, remote: RemoteFile) -> str | None:
    """verify(), skipped when the file is unchanged since it last passed (gigabytes to hash)."""
    stamp = _stamp(path)
    if stamp.is_file() and stamp.read_text() == _fingerprint(path):
        return None
    problem = verify(path, remote)
    if problem is None:
        write_stamp(path)
    return problem
