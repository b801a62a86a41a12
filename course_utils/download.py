"""Downloads that stream, resume, verify and rename atomically, with the steps to do it by hand."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import shutil
import time
import zipfile
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from filelock import FileLock
from tqdm.auto import tqdm

from course_utils.config import DATA_DIR_ENV

# Dataverse and Mendeley answer some scripts with an error page; a browser-like agent avoids it.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) course_utils"
CHUNK = 1 << 20
TIMEOUT = 10.0  # seconds a connection, or one read, may wait for the host
DEADLINE = 30.0  # seconds after which no new try of a file starts (a running transfer goes on)
MIN_RATE = 16_000.0  # bytes/s: a transfer slower than this over RATE_WINDOW s is given up
RATE_WINDOW = 15.0
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


AGAIN = "Then run the notebook cell (or `python -m course_utils.prefetch`) again."
# A base URL tried before the published hosts, laid out like data/ (ham10000/…, chest_xray/…,
# medmnist/…) plus weights/ for ImageNet weight files; what it serves is verified the same way.
MIRROR_ENV = "COURSE_MIRROR"


class DownloadError(RuntimeError):
    """A file could not be fetched or verified; the message says how to get it by hand."""

    def __init__(self, steps: str, problems: list[str] | None = None) -> None:
        super().__init__(f"{steps}\n{AGAIN}")
        self.steps = steps  # what went wrong and how to get the file(s) by hand
        self.problems = problems or []  # what went wrong, one line per URL tried

    def reason(self) -> str:
        """The first thing that went wrong, in one line."""
        return self.problems[0] if self.problems else str(self).splitlines()[0]


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


def _write_stamp(path: Path) -> None:
    """Remember that `path` passed verification (not possible on a read-only stick: fine)."""
    with contextlib.suppress(OSError):
        _stamp(path).write_text(_fingerprint(path))


def _verify_once(path: Path, remote: RemoteFile) -> str | None:
    """verify(), skipped when the file is unchanged since it last passed (gigabytes to hash)."""
    stamp = _stamp(path)
    if stamp.is_file() and stamp.read_text() == _fingerprint(path):
        return None
    problem = verify(path, remote)
    if problem is None:
        _write_stamp(path)
    return problem


class _NoAnswer(OSError):
    """The host sent no answer at all (no name, nobody listening, silence): try the next URL."""


class _LocalWriteError(OSError):
    """Writing the .part failed on this machine (disk full, read-only): no URL will help."""


class _Trickle(OSError):
    """Bytes arrive, but too slowly to ever finish."""


def _fetch(url: str, part: Path, timeout: float, progress: bool, min_rate: float) -> None:
    """Stream `url` into `part`, continuing after the bytes already there when the server allows."""
    start = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as err:
        if err.code == 416 and start:  # nothing left to send: the .part is complete
            return
        raise
    except (URLError, OSError, http.client.HTTPException) as err:
        raise _NoAnswer(str(getattr(err, "reason", err))) from err
    with response:
        if start and not _continues_at(response, start):  # range ignored or answered from
            start = 0  # another offset (a 206 from byte 0): start over, never splice
        length = response.headers.get("Content-Length")
        total = int(length) + start if length else None
        try:
            f = open(part, "ab" if start else "wb")  # noqa: SIM115 (closed below)
        except OSError as err:
            raise _LocalWriteError(err.errno, err.strerror, str(part)) from None
        with f, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=part.stem,
            disable=not progress, leave=False,
        ) as bar:  # fmt: skip
            _stream(response, f, bar, min_rate)
    if total is not None and part.stat().st_size < total:
        raise http.client.IncompleteRead(b"", total - part.stat().st_size)


def _stream(response: http.client.HTTPResponse, f: BinaryIO, bar: tqdm, min_rate: float) -> None:
    """Copy what arrives into `f`; stop when a window of RATE_WINDOW s brings under min_rate B/s."""
    window_start, window_bytes = time.monotonic(), 0
    while chunk := response.read1(CHUNK):  # read1: what has arrived, so a trickle is seen
        try:
            f.write(chunk)
        except OSError as err:
            raise _LocalWriteError(err.errno, err.strerror, f.name) from None
        bar.update(len(chunk))
        window_bytes += len(chunk)
        elapsed = time.monotonic() - window_start
        if elapsed >= RATE_WINDOW:
            if window_bytes < min_rate * elapsed:
                raise _Trickle(
                    f"the network brings only {window_bytes / elapsed / 1000:.1f} kB/s "
                    f"(under {min_rate / 1000:.0f} kB/s for {elapsed:.0f} s)"
                )
            window_start, window_bytes = time.monotonic(), 0


def _continues_at(response: http.client.HTTPResponse, start: int) -> bool:
    """Is this a 206 whose Content-Range begins exactly where the .part ends?"""
    content_range = response.headers.get("Content-Range", "")
    return response.status == 206 and content_range.startswith(f"bytes {start}-")


def _retry_after(err: HTTPError) -> float | None:
    """The seconds a 429 or 503 asks the client to wait (Retry-After: seconds or a date)."""
    value = (err.headers or {}).get("Retry-After", "")
    if value.strip().isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None


def download(
    remote: RemoteFile,
    folder: Path,
    *,
    retries: int = 3,
    backoff: float = 2.0,
    timeout: float = TIMEOUT,
    deadline: float = DEADLINE,
    min_rate: float = MIN_RATE,
    manual: str = "",
    progress: bool = True,
) -> Path:
    """Fetch `remote` into `folder` (via `name.part`, resumed on retry) unless it is already there.

    The file appears under its final name only once verified; a file already there (perhaps put
    there by hand) is verified too. One process at a time fetches a file (a lock beside it);
    another that asks meanwhile waits and then uses it. A host that does not answer within
    `timeout` s is left for the next URL; no new try starts after `deadline` s; a transfer slower
    than `min_rate` B/s is given up. Raises DownloadError with the manual steps when all fails.
    """
    dest = Path(folder) / remote.name
    if dest.is_file():
        return _use_existing(dest, remote, manual)
    lock = _lock_beside(dest, remote, manual)
    try:
        if dest.is_file():  # another process fetched it while this one waited
            return _use_existing(dest, remote, manual)
        limits = (retries, backoff, timeout, deadline, min_rate)
        return _fetch_verified(remote, dest, limits, manual, progress)
    finally:
        lock.release()


def _lock_beside(dest: Path, remote: RemoteFile, manual: str) -> FileLock:
    """The cross-process lock of `dest`, held; a folder that cannot be written says so."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)  # the folder the manual steps name exists
        lock = FileLock(dest.with_name(f".{dest.name}.lock"))
        lock.acquire()
    except OSError as err:
        raise _cannot_write(remote, dest, err, manual) from None
    return lock


def _cannot_write(remote: RemoteFile, dest: Path, err: OSError, manual: str) -> DownloadError:
    """The error when this machine cannot write the file: its disk is full or read-only."""
    if err.errno in DISK_FULL:
        free = shutil.disk_usage(dest.parent).free if dest.parent.exists() else 0
        need = f"{remote.size:,} bytes are needed, " if remote.size else ""
        cause = f"the disk is full ({need}{free:,} bytes are free in {dest.parent})"
    else:
        cause = f"{dest.parent} cannot be written ({err.strerror or err}; read-only?)"
    fix = (
        f"Free some space, or point {DATA_DIR_ENV} at a folder with room you can write to, "
        f"or put the file there by hand as below."
    )
    return DownloadError(manual_steps(remote, dest.parent, [cause, fix], manual), [cause])


def _use_existing(dest: Path, remote: RemoteFile, manual: str) -> Path:
    """A file already in place, verified (once: a stamp remembers it), or the steps to fix it."""
    if (problem := _verify_once(dest, remote)) is None:
        return dest
    steps = manual_steps(remote, dest.parent, [f"the file on disk: {problem}"], manual, verb="use")
    raise DownloadError(f"Delete {dest}: it is not the expected file.\n{steps}", [problem])


def _fetch_verified(
    remote: RemoteFile,
    dest: Path,
    limits: tuple[int, float, float, float, float],
    manual: str,
    progress: bool,
) -> Path:
    """Try each URL up to `retries` times within the deadline; verified, the file is renamed."""
    retries, backoff, timeout, deadline, min_rate = limits
    part = dest.with_name(dest.name + ".part")
    problems: list[str] = []
    ends = time.monotonic() + deadline
    if (room := _room_problem(remote, part)) is not None:
        raise _cannot_write(remote, dest, room, manual)
    for url in remote.urls_to_try():
        for attempt in range(1, retries + 1):
            if (left := ends - time.monotonic()) <= 0:
                problems.append(f"gave up: no try starts after {deadline:.0f} s (the deadline)")
                raise DownloadError(manual_steps(remote, dest.parent, problems, manual), problems)
            resumed = part.exists()
            wait = backoff * attempt
            try:
                _fetch(url, part, min(timeout, max(left, 1.0)), progress, min_rate)
            except _LocalWriteError as err:
                part.unlink(missing_ok=True)  # a full disk needs the space back
                raise _cannot_write(remote, dest, err, manual) from None
            except HTTPError as err:
                problems.append(f"{url}: HTTP {err.code} {err.reason}")
                asked = _retry_after(err) if err.code in (429, 503) else None
                if asked is not None and asked > ends - time.monotonic():
                    problems.append(f"{url}: the host asks to wait {asked:.0f} s; try later")
                    break
                if 400 <= err.code < 500 and err.code not in (408, 429):
                    break  # retrying will not change the answer
                time.sleep(min(asked if asked is not None else wait, max(left, 0)))
                continue
            except (_NoAnswer, _Trickle) as err:  # the next URL may do better; this one won't
                problems.append(f"{url}: {type(err.__cause__ or err).__name__}: {err}")
                break
            except (URLError, OSError, http.client.HTTPException) as err:
                problems.append(f"{url}: {type(err).__name__}: {err}")
                time.sleep(min(wait, max(left, 0)))
                continue  # the next attempt resumes from what the .part holds
            problem = verify(part, remote)
            if problem is None:
                os.replace(part, dest)  # atomic: the final name only ever holds a whole file
                _write_stamp(dest)
                return dest
            part.unlink()  # never resume from bytes that failed verification
            problems.append(f"{url}: downloaded file failed verification: {problem}")
            if not resumed:  # a stale or spliced .part gets one more try from the first byte
                break
    raise DownloadError(manual_steps(remote, dest.parent, problems, manual), problems)


def _room_problem(remote: RemoteFile, part: Path) -> OSError | None:
    """A disk-full error before the first byte, when the file's size is known and will not fit."""
    if remote.size is None:
        return None
    have = part.stat().st_size if part.exists() else 0
    free = shutil.disk_usage(part.parent).free
    if free < remote.size - have:
        return OSError(errno.ENOSPC, f"{remote.size - have:,} bytes needed, {free:,} free")
    return None


def manual_steps(
    remote: RemoteFile, folder: Path, problems: list[str], manual: str = "", verb: str = "download"
) -> str:
    """The message that says how to fetch `remote` by hand into `folder`, after `problems`."""
    dest = Path(folder) / remote.name
    part = dest.with_name(dest.name + ".part")
    lines = [f"Could not {verb} {remote.name}:", *(f"  - {p}" for p in problems[-6:])]
    urls = remote.urls_to_try()
    lines += ["To get it by hand:", f"  1. Download it in a browser from {urls[0]}"]
    lines += [f"     (or a mirror: {url})" for url in urls[1:]]
    if manual:
        lines.append(f"     {manual}")
    lines.append(f"  2. Save it as {dest} (exactly this name and folder).")
    checks = [f"{a} {getattr(remote, a)}" for a in ("md5", "sha256") if getattr(remote, a)]
    if remote.sha256_prefix:
        checks.append(f"a sha256 starting {remote.sha256_prefix}")
    if remote.size:
        checks.append(f"{remote.size:,} bytes")
    if checks:
        lines.append(f"  3. It should have {', '.join(checks)}.")
    if part.exists():
        lines.append(
            f"({part.stat().st_size:,} bytes are kept in {part.name}; the next try resumes.)"
        )
    return "\n".join(lines)
