"""Downloads that stream, resume, verify and rename atomically, with the steps to do it by hand."""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import shutil
import time
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse
from urllib.request import Request, urlopen

from filelock import FileLock
from tqdm.auto import tqdm

from course_utils.config import DATA_DIR_ENV
from course_utils.remote import CHUNK, RemoteFile, verify, verify_once, write_stamp

# Dataverse and Mendeley answer some scripts with an error page; a browser-like agent avoids it.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) course_utils"
TIMEOUT = 5.0  # seconds a connection, or one read, may wait for the host
DEADLINE = 30.0  # seconds without a new byte after which no new try of a file starts
MIN_RATE = 16_000.0  # bytes/s: a transfer slower than this over RATE_WINDOW s is given up
RATE_WINDOW = 15.0
# A host that sent no answer is not asked again, for another file, for this long: with no usable
# network a notebook that wants nine weight files from one host then waits once, not nine times.
SILENT_FOR = 60.0
_SILENT: dict[str, float] = {}  # host → when it last failed to answer (time.monotonic)
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


AGAIN = "Then run the notebook cell (or `python -m course_utils.prefetch`) again."


class DownloadError(RuntimeError):
    """A file could not be fetched or verified; the message says how to get it by hand."""

    def __init__(self, steps: str, problems: list[str] | None = None) -> None:
        super().__init__(f"{steps}\n{AGAIN}")
        self.steps = steps  # what went wrong and how to get the file(s) by hand
        self.problems = problems or []  # what went wrong, one line per URL tried

    def reason(self) -> str:
        """The first thing that went wrong, in one line."""
        return self.problems[0] if self.problems else str(self).splitlines()[0]


class _NoAnswer(OSError):
    """The host sent no answer at all (no name, nobody listening, silence): try the next URL."""


class _LocalWriteError(OSError):
    """Writing the .part failed on this machine (disk full, read-only): no URL will help."""


class _Trickle(OSError):
    """Bytes arrive, but too slowly to ever finish."""


def _fetch(url: str, part: Path, timeout: float, progress: bool, min_rate: float) -> None:
    """Stream `url` into `part`, continuing after the bytes already there when the server allows."""
    start = _size(part)
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
    announce: bool = True,
) -> Path:
    """Fetch `remote` into `folder` (via `name.part`, resumed on retry) unless it is already there.

    The file appears under its final name only once verified; a file already there (perhaps put
    there by hand) is verified too. One process at a time fetches a file (a lock beside it);
    another that asks meanwhile waits and then uses it. A host that does not answer within
    `timeout` s is left for the next URL; no new try starts after `deadline` s without a new
    byte; a transfer slower than `min_rate` B/s is given up. Raises DownloadError with the
    manual steps when all fails.
    """
    dest = Path(folder) / remote.name
    if dest.is_file():
        return _use_existing(dest, remote, manual)
    lock = _lock_beside(dest, remote, manual)
    try:
        if dest.is_file():  # another process fetched it while this one waited
            return _use_existing(dest, remote, manual)
        if announce:
            print(plan(remote, dest.with_name(dest.name + ".part")))
        limits = (retries, backoff, timeout, deadline, min_rate)
        return _fetch_verified(remote, dest, limits, manual, progress)
    finally:
        lock.release()


def plan(remote: RemoteFile, part: Path) -> str:
    """What is about to be fetched, from where, how big, and about how long it takes."""
    hosts = " then ".join(dict.fromkeys(urlparse(url).netloc for url in remote.urls_to_try()))
    have = _size(part)
    line = f"Downloading {remote.name} from {hosts}"
    if remote.size:
        left = remote.size - have
        line += f": {remote.size / 1e6:,.1f} MB" + (
            f", {have / 1e6:,.1f} MB already here" if have else ""
        )
        line += f"; about {_duration(left / 10e6)} at 10 MB/s, {_duration(left / 1e6)} at 1 MB/s"
    return line + "."


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


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
    if (problem := verify_once(dest, remote)) is None:
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
    """Try each URL until it fails `retries` times without progress, or `deadline` s pass with no
    new byte; the verified file is renamed into place."""
    retries, backoff, timeout, deadline, min_rate = limits
    part = dest.with_name(dest.name + ".part")
    problems: list[str] = []
    if (room := _room_problem(remote, part)) is not None:
        raise _cannot_write(remote, dest, room, manual)
    ends = time.monotonic() + deadline
    for url in remote.urls_to_try():
        if (quiet := _silent_for(url)) is not None:
            problems.append(
                f"{url}: not asked: the host did not answer {quiet:.0f} s ago (it is asked "
                f"again {SILENT_FOR:.0f} s after that, or at once after a kernel restart)"
            )
            continue
        failures = 0
        while failures < retries:
            if (left := ends - time.monotonic()) <= 0:
                problems.append(f"gave up: {deadline:.0f} s passed without a byte arriving")
                raise DownloadError(manual_steps(remote, dest.parent, problems, manual), problems)
            had = _size(part)
            try:
                outcome, why, asked = _attempt(
                    url, part, min(timeout, max(left, 1)), progress, min_rate
                )
            except _LocalWriteError as err:
                part.unlink(missing_ok=True)  # a full disk needs the space back
                raise _cannot_write(remote, dest, err, manual) from None
            if outcome == "whole?":
                if (problem := verify(part, remote)) is None:
                    os.replace(part, dest)  # atomic: the final name only ever holds a whole file
                    write_stamp(dest)
                    return dest
                part.unlink()  # never resume from bytes that failed verification
                problems.append(f"{url}: downloaded file failed verification: {problem}")
                failures = retries if had == 0 else failures + 1  # a stale .part: once more
                continue
            problems.append(why)
            if outcome == "next":
                if why.endswith("timed out"):  # silence, not a refusal (that is quick anyway)
                    _SILENT[urlparse(url).netloc] = time.monotonic()
                break
            if _size(part) > had:  # it made progress: resume at once, with a fresh deadline
                ends = time.monotonic() + deadline
                continue
            failures += 1
            wait = backoff * failures if asked is None else asked
            if asked is not None and asked > ends - time.monotonic():
                problems.append(f"{url}: the host asks to wait {asked:.0f} s; try later")
                break
            time.sleep(max(0.0, min(wait, ends - time.monotonic())))
    raise DownloadError(manual_steps(remote, dest.parent, problems, manual), problems)


def _silent_for(url: str) -> float | None:
    """Seconds since this URL's host last sent no answer, if that was under SILENT_FOR ago."""
    since = time.monotonic() - _SILENT.get(urlparse(url).netloc, -SILENT_FOR)
    return since if since < SILENT_FOR else None


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _attempt(
    url: str, part: Path, timeout: float, progress: bool, min_rate: float
) -> tuple[str, str, float | None]:
    """One request into `part`: ("whole?", …) to verify, else ("retry" | "next", why, wait s)."""
    try:
        _fetch(url, part, timeout, progress, min_rate)
    except _LocalWriteError:
        raise
    except HTTPError as err:
        why = f"{url}: HTTP {err.code} {err.reason}"
        if 400 <= err.code < 500 and err.code not in (408, 429):
            return "next", why, None  # retrying will not change the answer
        return "retry", why, _retry_after(err) if err.code in (429, 503) else None
    except (_NoAnswer, _Trickle) as err:  # silence or a trickle: the next URL may do better
        return "next", f"{url}: {type(err.__cause__ or err).__name__}: {err}", None
    except (URLError, OSError, http.client.HTTPException) as err:  # a cut: resume
        return "retry", f"{url}: {type(err).__name__}: {err}", None
    return "whole?", "", None


def _room_problem(remote: RemoteFile, part: Path) -> OSError | None:
    """A disk-full error before the first byte, when the file's size is known and will not fit."""
    if remote.size is None:
        return None
    have = _size(part)
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
