"""Serve a data/ folder (or a pack) to a workshop room over HTTP: each byte crosses the internet
once per room, not once per learner.

    python -m course_utils.mirror data/                      # prints the line learners run
    python -m course_utils.mirror data/ --port 8001 --log mirror.log

The folder is laid out like data/ (ham10000/, chest_xray/, medmnist/) plus weights/ holding the
torch hub's weight files (INSTRUCTOR.md). course_utils.download asks $COURSE_MIRROR/<path> first
and verifies what it gets against the published checksums; a cut transfer resumes (HTTP Range).
Stdlib only: `python course_utils/mirror.py data/` runs where the course is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import math
import os
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO, TextIO
from urllib.parse import unquote, urlsplit

LAYOUT = ("ham10000", "chest_xray", "medmnist", "weights")  # what course_utils.download asks for
CHUNK = 256 * 1024  # bytes per write: files are gigabytes, never read whole
CLIENT_TIMEOUT = 120.0  # seconds a client may take to take one chunk before it is let go
CUT = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
RANGE = re.compile(r"bytes=(\d*)-(\d*)")
IN_USE = (errno.EADDRINUSE, 10048)  # 10048: Windows' WSAEADDRINUSE
NOT_HERE = (errno.EADDRNOTAVAIL, 10049)
PROBES = ("10.254.254.254", "192.168.254.254", "172.16.254.254")  # private: no packet is sent
Answer = tuple[int, int, bool]  # status, body bytes sent, cut short?


class Unsatisfiable(ValueError):
    """A Range that asks for bytes beyond the end of the file."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of a single-range header; None: send the whole file."""
    match = RANGE.fullmatch((header or "").replace(" ", ""))
    if not match or match.groups() == ("", ""):
        return None  # absent, several ranges or malformed: the whole file (RFC 9110 allows it)
    first, last = match.groups()
    if first and last and int(last) < int(first):
        return None  # invalid, so ignored
    if first:
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
    else:  # bytes=-K: the last K bytes
        start, end = max(size - int(last), 0), size - 1
    if start >= size or end < start:
        raise Unsatisfiable(f"bytes {start}- of a {size}-byte file")
    return start, end


def safe_file(folder: Path, relative: str) -> Path | None:
    """The file `relative` names under `folder` (resolved), or None: outside, hidden, not a file."""
    parts = [part for part in relative.split("/") if part]
    if any(p.startswith(".") or "\\" in p or ":" in p or "\0" in p for p in parts):
        return None  # "..", hidden files (locks, stamps), Windows separators and drives
    try:
        path = folder.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    return path if path.is_file() and path.is_relative_to(folder) else None


def walk(folder: Path) -> tuple[list[tuple[str, int]], list[str]]:
    """(path, size) of each file served, sorted; and the links that point out of `folder`."""
    served, outside = [], []
    for top, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(n for n in names if not n.startswith(".")):
            relative = Path(top, name).relative_to(folder).as_posix()
            if (path := safe_file(folder, relative)) is not None:
                served.append((relative, path.stat().st_size))
            elif Path(top, name).is_symlink():
                outside.append(relative)
    return served, outside


def index_text(folder: Path) -> str:
    """The page at /: the files downloads ask for, with sizes; deeper folders in one line each."""
    files, _ = walk(folder)
    deeper: dict[str, list[int]] = {}
    lines = [f"course_utils mirror: {len(files)} files, {_size(sum(s for _, s in files))}", ""]
    for relative, size in files:
        parts = relative.split("/")
        if len(parts) <= 2:
            lines.append(f"{size:>15,}  {relative}")
        else:
            total = deeper.setdefault("/".join(parts[:2]) + "/", [0, 0])
            total[0], total[1] = total[0] + 1, total[1] + size
    lines += [f"{b:>15,}  {name} ({n:,} files)" for name, (n, b) in sorted(deeper.items())]
    return "\n".join(lines) + "\n"


class MirrorServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer over one folder that logs each request and counts per client."""

    daemon_threads = True
    allow_reuse_address = sys.platform != "win32"  # on Windows it would share a port in use

    def __init__(self, folder: Path, address: tuple[str, int], log: TextIO | None) -> None:
        self.folder = folder.resolve()
        self.log = log
        self.lock = threading.Lock()
        self.clients: dict[str, list[int]] = {}  # client address → [requests, bytes sent]
        self.missing: dict[str, int] = {}  # paths asked for but not here → times asked
        self.cuts = 0
        super().__init__(address, MirrorHandler)

    def emit(self, line: str) -> None:
        """One line to stdout and to the log file."""
        with self.lock:
            print(line, flush=True)
            if self.log:
                self.log.write(line + "\n")
                self.log.flush()

    def record(self, client: str, request: str, status: int, sent: int, cut: bool, took: float):
        """Log one answered request ("GET /path") and count it for its client."""
        request = "".join(c if c.isprintable() else "?" for c in request)
        with self.lock:
            stats = self.clients.setdefault(client, [0, 0])
            stats[0], stats[1] = stats[0] + 1, stats[1] + sent
            if status == 404:
                path = request.split(" ", 1)[-1]
                self.missing[path] = self.missing.get(path, 0) + 1
            self.cuts += cut
        what = f"cut after {sent:,} bytes" if cut else f"{sent:,} bytes"
        self.emit(f"{_now()} {client} {request} {status} {what} {took:.2f} s")

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A connection that broke outside a request's answer: one line, never a traceback."""
        err = sys.exc_info()[1]
        self.emit(f"{_now()} {client_address[0]} connection dropped ({type(err).__name__}: {err})")

    def server_close(self) -> None:
        """Close the socket and the log file."""
        super().server_close()
        if self.log:
            self.log.close()


class MirrorHandler(BaseHTTPRequestHandler):
    """GET and HEAD of the files under the server's folder, with single byte ranges."""

    server: MirrorServer
    server_version = "course_utils-mirror/1"
    timeout = CLIENT_TIMEOUT

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        """Answer a GET, or a HEAD (the same headers, no body), and log it."""
        self._answer()

    do_HEAD = do_GET

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Nothing here: _answer logs each request once answered, with bytes and seconds."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        """What http.server answers itself (a malformed request, an unknown method): one line."""
        self.server.emit(f"{_now()} {self.client_address[0]} {format % args}")

    def _answer(self) -> None:
        """Answer the request, then log it."""
        started = time.monotonic()
        status, sent, cut = self._respond()
        request, took = f"{self.command} {self.path}", time.monotonic() - started
        self.server.record(self.client_address[0], request, status, sent, cut, took)

    def _respond(self) -> Answer:
        """Send the answer: (status, body bytes sent, cut short?)."""
        target = unquote(urlsplit(self.path).path)
        if target == "/":
            return self._text(200, index_text(self.server.folder))
        path = safe_file(self.server.folder, target)
        if path is None:
            return self._text(404, f"{target} is not on this mirror: / lists what it serves\n")
        size = path.stat().st_size
        try:
            span = byte_range(self.headers.get("Range"), size)
        except Unsatisfiable:
            message = f"{target} has {size:,} bytes: {self.headers['Range']} is beyond its end\n"
            return self._text(416, message, {"Content-Range": f"bytes */{size}"})
        start, end = span or (0, size - 1)
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "Last-Modified": self.date_time_string(int(path.stat().st_mtime)),
        }
        if span:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        with open(path, "rb") as f:
            f.seek(start)
            return self._send(206 if span else 200, headers, f, end - start + 1)

    def _text(self, status: int, text: str, extra: dict[str, str] | None = None) -> Answer:
        """A short plain-text answer."""
        body = text.encode()
        headers = {"Content-Type": "text/plain; charset=utf-8", **(extra or {})}
        return self._send(status, headers, io.BytesIO(body), len(body))

    def _send(self, status: int, headers: dict[str, str], source: BinaryIO, length: int) -> Answer:
        """Status, headers, Content-Length and, for GET, `length` bytes of `source` in chunks."""
        sent = 0
        try:
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(length)}.items():
                self.send_header(key, value)
            self.end_headers()
            while self.command == "GET" and sent < length:
                if not (chunk := source.read(min(CHUNK, length - sent))):
                    break  # the file shrank while being sent: the client will see it is short
                self.wfile.write(chunk)
                sent += len(chunk)
        except CUT:
            pass  # the client went away (or stalled): logged as cut, it resumes with a Range
        cut = self.command == "GET" and sent < length
        self.close_connection = self.close_connection or cut
        return status, sent, cut


def serve(
    folder: Path | str, host: str = "0.0.0.0", port: int = 8000, log: Path | str | None = None
) -> MirrorServer:
    """Serve `folder` from a background thread (port 0: any free one); .shutdown() stops it."""
    stream = open(log, "a", encoding="utf-8") if log else None  # noqa: SIM115 (server_close)
    try:
        server = MirrorServer(Path(folder), (host, port), stream)
    except OSError:
        if stream:
            stream.close()
        raise
    threading.Thread(target=server.serve_forever, name="mirror", daemon=True).start()
    return server


def local_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, found without network access; else loopback."""
    found = []
    for probe in PROBES:  # a UDP connect() only looks up the route: the outgoing interface
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))
            found.append(s.getsockname()[0])
    with contextlib.suppress(OSError):
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        found += [info[4][0] for info in infos]
    usable = [a for a in dict.fromkeys(found) if not a.startswith(("127.", "0."))]
    return usable or ["127.0.0.1"]


def layout_lines(folder: Path) -> list[str]:
    """What `folder` holds: files, size, which of LAYOUT; a warning when it is not a data folder."""
    files, outside = walk(folder)
    total = _size(sum(size for _, size in files))
    present = [f"{name}/" for name in LAYOUT if (folder / name).is_dir()]
    missing = [f"{name}/" for name in LAYOUT if not (folder / name).is_dir()]
    lines = [f"Serving {folder}: {len(files):,} files, {total}"]
    if not present:
        lines.append(
            f"  WARNING: none of {' '.join(missing)} is here, so this is not a data/ folder or a "
            "pack and learners' downloads will not find their files: serve the data/ folder "
            "that `python -m course_utils.prefetch` filled (INSTRUCTOR.md)."
        )
        return lines
    lines.append(f"  present: {' '.join(present)}")
    if missing:
        lines.append(f"  missing: {' '.join(missing)} (learners fetch those from the internet)")
    if "weights/" in missing:
        lines.append(
            f"  for the ImageNet weights: mkdir {folder / 'weights'} and copy "
            "~/.cache/torch/hub/checkpoints/*.pth into it"
        )
    if outside:
        lines.append(
            f"  {len(outside)} link(s) point outside {folder} and are not served: copy the files "
            f"in instead ({', '.join(outside[:3])})"
        )
    return lines


def startup_lines(server: MirrorServer) -> list[str]:
    """What is served, where, and the exact lines learners run to use it."""
    host, port = server.server_address[:2]
    hosts = local_addresses() if host in ("", "0.0.0.0") else [host]
    urls = [f"http://{address}:{port}" for address in hosts]
    lines = [*layout_lines(server.folder), f"Listening on {host or '0.0.0.0'} port {port}."]
    if host.startswith("127.") or host == "localhost":
        lines.append("  Only this machine can reach it: for a room, leave out --host.")
    elif hosts == ["127.0.0.1"]:
        lines.append("  This machine has no network address: join the room's network, start again.")
    which = " (the one on the room's network)" if len(urls) > 1 else ""
    lines.append(f"Learners run{which}, before starting Jupyter, in a terminal:")
    lines += [f"  export COURSE_MIRROR={url}" for url in urls]
    lines.append("or in Windows PowerShell:")
    lines += [f'  $env:COURSE_MIRROR="{url}"' for url in urls]
    lines.append(f"(in a running notebook: %env COURSE_MIRROR={urls[0]}). Files: {urls[0]}/")
    lines.append("Ctrl-C stops the mirror.")
    return lines


def summary_lines(server: MirrorServer) -> list[str]:
    """Requests and bytes served, per client, and what learners asked for that was not here."""
    with server.lock:
        clients, missing, cuts = dict(server.clients), dict(server.missing), server.cuts
    requests, sent = sum(r for r, _ in clients.values()), sum(b for _, b in clients.values())
    lines = [
        f"Stopped: {requests} requests, {_size(sent)} served to {len(clients)} client(s), "
        f"{cuts} cut short (their clients resume where they stopped)."
    ]
    lines += [f"  {client}: {r} requests, {_size(b)}" for client, (r, b) in sorted(clients.items())]
    if missing:
        lines.append("Asked for but not here (fetched from the internet instead: prefetch them):")
        lines += [f"  {times} x {path}" for path, times in sorted(missing.items())]
    return lines


def _problem(err: OSError, args: argparse.Namespace) -> str:
    """What to do when the mirror cannot start."""
    if err.filename is not None and args.log and Path(err.filename) == Path(args.log):
        return f"cannot write the log {args.log} ({err.strerror}): pass --log a file you can write"
    if err.errno in IN_USE:
        return f"port {args.port} is in use (another mirror?): pass --port {args.port + 1}"
    if err.errno == errno.EACCES:
        return f"port {args.port} needs administrator rights here: pass --port 8000"
    if err.errno in NOT_HERE or isinstance(err, socket.gaierror):
        return f"{args.host} is not an address of this machine: leave out --host"
    return f"cannot listen on {args.host}:{args.port} ({err}): pass another --port"


def main(argv: list[str] | None = None) -> int:
    """Command line: serve until Ctrl-C, then print a summary; 1 if the mirror cannot start."""
    parser = argparse.ArgumentParser(
        prog="python -m course_utils.mirror",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("folder", type=Path, help="a data/ folder (with weights/) or a pack")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=_port, default=8000, help="0: any free port (printed)")
    parser.add_argument("--log", type=Path, help="also append each request's line to this file")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(f"{args.folder} is not a folder: pass the data/ folder or a pack", file=sys.stderr)
        return 1
    try:
        server = serve(args.folder, args.host, args.port, args.log)
    except OSError as err:
        print(_problem(err, args), file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` stops it cleanly too
    for line in startup_lines(server):
        server.emit(line)
    try:
        while True:
            time.sleep(3600)  # (interruptible on Windows, unlike a join)
    except KeyboardInterrupt:
        pass
    server.shutdown()
    for line in summary_lines(server):
        server.emit(line)
    server.server_close()
    return 0


def _size(n: float) -> str:
    """A byte count for people: 812 bytes, 3.2 MB, 4.1 GB."""
    if n < 1000:
        return f"{int(n)} bytes"
    power = min(int(math.log10(n)) // 3, 3)
    return f"{n / 1000**power:.1f} {('kB', 'MB', 'GB')[power - 1]}"


def _port(text: str) -> int:
    """A port number for argparse: 0 to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port: pass a number like 8000")
    return int(text)


def _now() -> str:
    """The time, for the log."""
    return time.strftime("%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":
    sys.exit(main())
