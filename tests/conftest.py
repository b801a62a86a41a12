"""Shared fixtures: the smoke profile, a quiet matplotlib, and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _smoke_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests run in the smoke profile, with an empty data cache, unless they set otherwise."""
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COURSE_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("COURSE_KAGGLE_INPUT", str(tmp_path / "no-kaggle-input"))  # even on Kaggle
    monkeypatch.delenv("COURSE_MIRROR", raising=False)
    monkeypatch.setattr("course_utils.models._UNAVAILABLE", {})  # each test starts unaware
    monkeypatch.setattr("course_utils.download._SILENT", {})  # of hosts that did not answer


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support, and misbehaves on request as real hosts do."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        server: Served = self.server.served
        server.requests.append((self.path, self.headers.get("Range")))
        if target := server.redirects.get(self.path):
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        if path.name in server.stall:  # accept the connection, never answer
            server.released.wait(60)
            self.close_connection = True
            return
        if answers := server.statuses.get(path.name):  # e.g. (429, {"Retry-After": "1"})
            code, headers = answers.pop(0)
            self.send_response(code)
            for key, value in {"Content-Length": "0", **headers}.items():
                self.send_header(key, value)
            self.end_headers()
            return
        self._send_file(server, path)

    def _send_file(self, server: Served, path: Path) -> None:
        body, start = path.read_bytes(), 0
        if path.name in server.html_instead:  # a rate-limit page, sent with status 200
            body = b"<!DOCTYPE html><html><body>Too many requests, try later</body></html>"
        if server.delay:
            time.sleep(server.delay)
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and path.name not in server.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_error(416)
                return
            if path.name in server.range_from_zero:  # a 206 that starts at byte 0 anyway
                start = 0
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        extra = server.extra_length.pop(path.name, 0)  # promise more bytes than are sent, once
        self.send_header("Content-Length", str(len(body) - start + extra))
        self.end_headers()
        if path.name in server.trickle:  # one byte per interval until the client gives up
            for byte in body[start:]:
                if server.released.wait(server.trickle[path.name]):
                    break
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            self.close_connection = True
            return
        cut = server.cut_after.pop(path.name, None)
        self.wfile.write(body[start:] if cut is None else body[start : start + cut])
        if cut is not None or extra:
            self.close_connection = True  # the client sees fewer bytes than promised


@dataclass
class Served:
    """The test server: its base URL, the folder it serves, and what it was asked."""

    url: str
    root: Path
    cut_after: dict[str, int] = field(default_factory=dict)  # file name → bytes sent, once
    html_instead: set[str] = field(default_factory=set)  # file names answered with a web page
    range_from_zero: set[str] = field(default_factory=set)  # names whose 206 restarts at byte 0
    delay: float = 0.0  # seconds before each answer (to make two clients overlap)
    stall: set[str] = field(default_factory=set)  # names whose requests are never answered
    trickle: dict[str, float] = field(default_factory=dict)  # name → seconds between bytes
    statuses: dict[str, list] = field(default_factory=dict)  # name → [(code, headers)], in turn
    ignore_range: set[str] = field(default_factory=set)  # names always sent whole, with 200
    extra_length: dict[str, int] = field(default_factory=dict)  # name → bytes promised, unsent
    redirects: dict[str, str] = field(default_factory=dict)  # request path → Location
    released: threading.Event = field(default_factory=threading.Event)  # set at teardown
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[Served]:
    """A real HTTP server on 127.0.0.1 serving a temporary folder."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(RangeHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.served = Served(f"http://127.0.0.1:{server.server_address[1]}", root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.served
    server.served.released.set()  # stalled and trickling answers end
    server.shutdown()
    server.server_close()


@pytest.fixture
def stage_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """stage(arch, state_dict): put weights in an empty hub cache under a name whose sha256
    prefix matches them (the course verifies it), as if downloaded; returns the file."""
    import hashlib

    import torch

    from course_utils import models

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def stage(arch: str, state: dict) -> Path:
        staging = tmp_path / f"{arch}.staging"
        torch.save(state, staging)
        digest = hashlib.sha256(staging.read_bytes()).hexdigest()[:8]
        url = f"http://127.0.0.1:9/{arch}-{digest}.pth"  # never asked: the file is on disk
        monkeypatch.setitem(models.WEIGHT_URLS, arch, url)
        target = models.weights_path(arch)
        target.parent.mkdir(parents=True, exist_ok=True)
        return staging.replace(target)

    return stage


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def slide_builder():
    """slides/build.py as a module (it is a script, not part of course_utils)."""
    spec = importlib.util.spec_from_file_location("slides_build", ROOT / "slides" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def built_slides(slide_builder, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every deck built once per test session; the pages, in order."""
    return slide_builder.build_all(tmp_path_factory.mktemp("slides"))


# A read-only file system over `$0`, then the command: a USB stick mounted read-only, for real. A
# private mount namespace keeps the mount to that one process; it works as root (who would
# ignore a chmod) and, through a user namespace, as anyone else where the kernel allows it.
READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
UNSHARE = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", READ_ONLY]


@dataclass
class ReadOnly:
    """A folder that the processes `run` starts see as a read-only file system."""

    folder: Path

    def run(self, code: str, data: Path | None = None) -> subprocess.CompletedProcess:
        """Run Python `code` with data (default: the folder) and results/ in the folder."""
        env = {
            **os.environ,
            "COURSE_DATA_DIR": str(data or self.folder),
            "COURSE_RESULTS_DIR": str(self.folder / "results"),
        }
        python = [sys.executable, "-c", textwrap.dedent(code)]
        return subprocess.run(
            [*UNSHARE, str(self.folder), *python], capture_output=True, text=True, timeout=300,
            env=env,
        )  # fmt: skip


@pytest.fixture
def read_only(tmp_path: Path) -> ReadOnly:
    """ReadOnly(tmp_path/"stick"), skipped where this machine cannot mount a folder read-only."""
    folder = tmp_path / "stick"
    folder.mkdir()
    probe = subprocess.run(
        [*UNSHARE, str(folder), "touch", str(folder / "probe")], capture_output=True, text=True
    )
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot mount a folder read-only here: {probe.stderr.strip()[:200]}")
    return ReadOnly(folder)
