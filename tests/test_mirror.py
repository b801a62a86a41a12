"""python -m course_utils.mirror, for real: a subprocess on 127.0.0.1, real clients, real cuts."""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from course_utils import mirror as mirror_module
from course_utils.download import RemoteFile, download

ROOT = Path(__file__).resolve().parents[1]
STARTUP = 120.0  # seconds: the subprocess imports course_utils (and so torch) on a busy machine
WAIT = 30.0  # seconds for anything else
SECRET = b"outside the mirror folder: never served"
FILES = {  # path under the mirror → size; random bytes
    "ham10000/HAM10000_images_part_1.zip": 3_000_000,
    "chest_xray/ChestXRay2017.zip": 2_000_000,
    "medmnist/pneumoniamnist_64.npz": 1_000_000,
    "weights/resnet18-f37072fd.pth": 500_000,
    "ham10000/big.zip": 24_000_000,  # more than the sockets' buffers: a cut is seen by the mirror
}
LINE = re.compile(
    r"\S+ \S+ (?P<client>\S+) (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) "
    r"(?P<cut>cut after )?(?P<sent>[\d,]+) bytes [\d.]+ s"
)


@dataclass
class Mirror:
    """The mirror subprocess: its URL, folder, files, and where its stdout and log go."""

    url: str
    port: int
    root: Path
    files: dict[str, bytes]
    stdout: Path
    log: Path
    secret: Path

    def requests(self, since: int = 0) -> list[re.Match]:
        """The request lines of the log file, from line `since` on."""
        lines = self.log.read_text().splitlines()[since:] if self.log.exists() else []
        return [m for line in lines if (m := LINE.fullmatch(line))]

    def log_length(self) -> int:
        """How many lines the log file has now."""
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0

    def wait_for(self, ok: Callable[[list[re.Match]], bool], since: int, what: str):
        """The request lines since `since` once `ok` holds for them (fails after WAIT s)."""
        ends = time.monotonic() + WAIT
        while not ok(found := self.requests(since)):
            if time.monotonic() > ends:
                pytest.fail(f"the log never showed {what}:\n" + self.log.read_text()[-3000:])
            time.sleep(0.05)
        return found


def _start(folder: Path, out: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """Start `python -m course_utils.mirror folder --port 0` on 127.0.0.1; (process, URL)."""
    command = [sys.executable, "-m", "course_utils.mirror", str(folder), "--host", "127.0.0.1"]
    with open(out, "w") as stdout, open(out.with_suffix(".err"), "w") as stderr:
        process = subprocess.Popen(
            [*command, "--port", "0", *extra], stdout=stdout, stderr=stderr, cwd=ROOT
        )
    ends = time.monotonic() + STARTUP
    while not (found := re.search(r"export COURSE_MIRROR=(http://\S+)", out.read_text())):
        if process.poll() is not None or time.monotonic() > ends:
            process.kill()
            pytest.fail(f"the mirror did not start:\n{out.read_text()}\n{_stderr(out)}")
        time.sleep(0.1)
    return process, found.group(1)


def _stop(process: subprocess.Popen) -> int:
    """Ctrl-C, as an instructor would; the exit code."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def _stderr(out: Path) -> str:
    return out.with_suffix(".err").read_text()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    """One mirror subprocess for this module, serving a folder laid out like data/."""
    base = tmp_path_factory.mktemp("mirror")
    root = base / "data"
    files = {path: os.urandom(size) for path, size in FILES.items()}
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    secret = base / "secret.txt"
    secret.write_bytes(SECRET)
    (root / "weights" / "escape.pth").symlink_to(secret)  # a link out of the folder
    (root / "weights" / "alias.pth").symlink_to("resnet18-f37072fd.pth")  # a link inside it
    (root / "ham10000" / ".HAM10000_images_part_1.zip.lock").write_bytes(SECRET)  # hidden
    log = base / "mirror.log"
    process, url = _start(root, base / "stdout.txt", "--log", str(log))
    yield Mirror(url, int(url.rsplit(":", 1)[1]), root, files, base / "stdout.txt", log, secret)
    _stop(process)


def _remote(mirror: Mirror, path: str) -> RemoteFile:
    """What course_utils.download is told about one of the mirror's files (no other host)."""
    data = mirror.files[path]
    return RemoteFile(
        name=path.rsplit("/", 1)[1],
        urls=("http://127.0.0.1:9/published-host-unreachable",),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        mirror_path=path,
    )


def _get(mirror: Mirror, path: str, method: str = "GET", **headers: str):
    """(status, headers, body) from http.client."""
    connection = http.client.HTTPConnection("127.0.0.1", mirror.port, timeout=WAIT)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _raw(mirror: Mirror, target: str) -> tuple[int, bytes]:
    """(status, whole answer) for a request line sent byte for byte, as an attacker would."""
    with socket.create_connection(("127.0.0.1", mirror.port), timeout=WAIT) as sock:
        sock.sendall(f"GET {target} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


DOWNLOADED = [path for path in FILES if path != "ham10000/big.zip"]


def test_four_clients_at_once_each_get_an_identical_copy(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_MIRROR", mirror.url)
    since = mirror.log_length()

    def client(number: int) -> list[Path]:
        folder = tmp_path / f"learner{number}"
        return [
            download(_remote(mirror, p), folder / p.split("/")[0], retries=1, progress=False)
            for p in DOWNLOADED
        ]

    with ThreadPoolExecutor(4) as pool:
        copies = list(pool.map(client, range(4)))
    for paths in copies:
        assert [p.read_bytes() for p in paths] == [mirror.files[p] for p in DOWNLOADED]

    def each_file_four_times(found: list[re.Match]) -> bool:
        whole = [(m["method"], m["path"], m["status"], m["sent"]) for m in found if not m["cut"]]
        return all(
            whole.count(("GET", f"/{p}", "200", f"{len(mirror.files[p]):,}")) == 4
            for p in DOWNLOADED
        )

    found = mirror.wait_for(each_file_four_times, since, "4 whole GETs of each file")
    assert len(found) == 4 * len(DOWNLOADED) and {m["client"] for m in found} == {"127.0.0.1"}
    stdout = mirror.stdout.read_text()
    assert all(m[0] in stdout for m in found)  # each line goes to stdout and to --log


def test_a_client_cut_mid_file_resumes_while_others_are_served(mirror, tmp_path, monkeypatch):
    path, since = "ham10000/big.zip", mirror.log_length()
    data = mirror.files[path]
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32_768)  # a small window: the mirror waits
    sock.settimeout(WAIT)
    sock.connect(("127.0.0.1", mirror.port))
    sock.sendall(f"GET /{path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < 200_000:
        chunk = sock.recv(65536)
        assert chunk, "the mirror closed the connection early"
        received += chunk
    head, got = received.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.0 200") and f"Content-Length: {len(data)}".encode() in head

    monkeypatch.setenv("COURSE_MIRROR", mirror.url)  # meanwhile another learner is served
    other = "chest_xray/ChestXRay2017.zip"
    copy = download(_remote(mirror, other), tmp_path / "other", retries=1, progress=False)
    assert copy.read_bytes() == mirror.files[other]

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a reset, as when a laptop's lid closes or its Wi-Fi drops
    cut = mirror.wait_for(lambda f: any(m["cut"] for m in f), since, "the cut")
    (line,) = [m for m in cut if m["cut"]]
    assert line["path"] == f"/{path}" and len(got) <= int(line["sent"].replace(",", "")) < len(data)
    assert "Traceback" not in mirror.stdout.read_text() + _stderr(mirror.stdout)

    status, headers, rest = _get(mirror, f"/{path}", Range=f"bytes={len(got)}-")
    assert status == 206
    assert headers["Content-Range"] == f"bytes {len(got)}-{len(data) - 1}/{len(data)}"
    assert got + rest == data


def test_download_resumes_a_partial_file_with_a_206(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_MIRROR", mirror.url)
    path, since = "medmnist/pneumoniamnist_64.npz", mirror.log_length()
    data, kept = mirror.files[path], 300_000
    folder = tmp_path / "medmnist"
    folder.mkdir()
    (folder / "pneumoniamnist_64.npz.part").write_bytes(data[:kept])  # an earlier, cut download

    assert download(_remote(mirror, path), folder, retries=1, progress=False).read_bytes() == data
    found = mirror.wait_for(lambda f: any(m["path"] == f"/{path}" for m in f), since, "the GET")
    assert [(m["status"], m["sent"]) for m in found] == [("206", f"{len(data) - kept:,}")]


def test_byte_ranges_head_and_unsatisfiable_ranges(mirror):
    path = "/weights/resnet18-f37072fd.pth"
    data, size = mirror.files[path[1:]], len(mirror.files[path[1:]])
    status, headers, body = _get(mirror, path, Range="bytes=10-19")
    assert (status, headers["Content-Range"], headers["Content-Length"]) == (
        206, f"bytes 10-19/{size}", "10",
    )  # fmt: skip
    assert body == data[10:20]
    assert _get(mirror, path, Range="bytes=1000-")[2] == data[1000:]
    assert _get(mirror, path, Range="bytes=-5")[2] == data[-5:]
    assert _get(mirror, path, Range=f"bytes={size - 3}-{size + 100}")[2] == data[-3:]  # clamped
    status, headers, body = _get(mirror, path)
    assert (status, headers["Content-Length"], body) == (200, str(size), data)
    assert headers["Accept-Ranges"] == "bytes"
    status, headers, _ = _get(mirror, path, Range=f"bytes={size}-")
    assert (status, headers["Content-Range"]) == (416, f"bytes */{size}")
    status, headers, body = _get(mirror, path, "HEAD")
    assert (status, headers["Content-Length"], body) == (200, str(size), b"")
    status, headers, body = _get(mirror, path, "HEAD", Range="bytes=0-99")
    assert (status, headers["Content-Length"], body) == (206, "100", b"")


def test_nothing_outside_the_folder_is_served(mirror):
    secret = str(mirror.secret)
    targets = [
        "/../secret.txt",
        "/ham10000/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/ham10000/%2e%2e/%2e%2e/secret.txt",
        secret,  # an absolute path
        "/" + secret,
        f"http://127.0.0.1:{mirror.port}/../secret.txt",
        "/weights/escape.pth",  # a symlink pointing outside
        "/ham10000/.HAM10000_images_part_1.zip.lock",  # hidden
        "/ham10000/",  # a folder: no listing
        "/ham10000",
        "/no/such/file.zip",
    ]
    for target in targets:
        status, answer = _raw(mirror, target)
        assert status in (403, 404) and SECRET not in answer, target
        assert answer.count(b"\n", answer.index(b"\r\n\r\n") + 4) == 1, target  # one line
    status, _, body = _get(mirror, "/weights/alias.pth")  # a link inside the folder is fine
    assert (status, body) == (200, mirror.files["weights/resnet18-f37072fd.pth"])
    status, headers, index = _get(mirror, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    for path, data in mirror.files.items():
        assert f"{len(data):,}  {path}\n" in index.decode()
    assert b"escape" not in index and b".lock" not in index


def test_startup_says_what_is_served_and_the_lines_learners_run(mirror):
    out = mirror.stdout.read_text()
    url = f"http://127.0.0.1:{mirror.port}"
    assert f"Serving {mirror.root.resolve()}: {len(FILES) + 1} files" in out  # + alias.pth
    assert "present: ham10000/ chest_xray/ medmnist/ weights/" in out and "missing" not in out
    assert "1 link(s) point outside" in out and "weights/escape.pth" in out
    assert f"export COURSE_MIRROR={url}\n" in out and f'$env:COURSE_MIRROR="{url}"' in out


def test_the_learner_lines_name_each_address_of_this_machine(mirror, monkeypatch):
    addresses = mirror_module.local_addresses()  # the real ones, found without network access
    assert addresses and all(ipaddress.IPv4Address(a) for a in addresses)
    assert addresses == ["127.0.0.1"] or not any(a.startswith("127.") for a in addresses)
    monkeypatch.setattr(mirror_module, "local_addresses", lambda: ["192.168.1.20", "10.0.0.5"])
    server = mirror_module.serve(mirror.root, "127.0.0.1", 0)
    try:
        monkeypatch.setattr(server, "server_address", ("0.0.0.0", 8000))  # as with the default
        lines = mirror_module.startup_lines(server)
    finally:
        server.shutdown()
        server.server_close()
    for address in ("192.168.1.20", "10.0.0.5"):
        assert f"  export COURSE_MIRROR=http://{address}:8000" in lines
        assert f'  $env:COURSE_MIRROR="http://{address}:8000"' in lines


def test_a_port_in_use_says_which_port_to_pass(mirror, capsys):
    assert mirror_module.main([str(mirror.root), "--host", "127.0.0.1", "--port", str(mirror.port)])
    message = capsys.readouterr().err
    assert f"port {mirror.port} is in use" in message and f"--port {mirror.port + 1}" in message


def test_a_folder_that_is_not_data_warns_and_ctrl_c_prints_a_summary(tmp_path):
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "notes.txt").write_bytes(b"12345")
    process, url = _start(tmp_path / "served", tmp_path / "out.txt")
    port = int(url.rsplit(":", 1)[1])
    try:
        assert (
            "WARNING: none of ham10000/ chest_xray/ medmnist/ weights/"
            in (tmp_path / "out.txt").read_text()
        )
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        for path, status in (("/notes.txt", 200), ("/medmnist/dermamnist_64.npz", 404)):
            connection.request("GET", path)
            response = connection.getresponse()
            assert (response.status, len(response.read()) > 0) == (status, True)
            connection.close()
    finally:
        code = _stop(process)
    out = (tmp_path / "out.txt").read_text()
    assert code == 0 and "Traceback" not in out + _stderr(tmp_path / "out.txt")
    assert "Stopped: 2 requests" in out and "127.0.0.1: 2 requests" in out
    assert "1 x /medmnist/dermamnist_64.npz" in out


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-", 10, (0, 9)),
        ("bytes=3-5", 10, (3, 5)),
        ("bytes=3-50", 10, (3, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=5-2", 10, None),  # invalid: ignored, the whole file
        ("bytes=0-1,4-5", 10, None),  # several ranges: the whole file
        ("items=0-1", 10, None),
    ],
)
def test_byte_range(header, size, expected):
    assert mirror_module.byte_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=0-", 0), ("bytes=-0", 10)])
def test_byte_range_unsatisfiable(header, size):
    with pytest.raises(mirror_module.Unsatisfiable):
        mirror_module.byte_range(header, size)
