"""The hostile network, for real: a misbehaving HTTP server on 127.0.0.1, real files, real
processes. Every test is bounded in requests and in seconds."""

import os
import subprocess
import sys
import textwrap
import time

import pytest

from course_utils import download as dl
from course_utils.download import DownloadError, RemoteFile, download

PAYLOAD = os.urandom(200_000)


def _remote(server, name="file.bin", payload=PAYLOAD, urls=None, **checks) -> RemoteFile:
    (server.root / name).write_bytes(payload)
    return RemoteFile(name, tuple(urls or (f"{server.url}/{name}",)), size=len(payload), **checks)


def _files(folder):
    """What a download left in `folder`, but its lock and stamp files."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_a_silent_host_is_left_after_one_timeout_for_the_next_url(http_server, tmp_path):
    (http_server.root / "silent").mkdir()
    (http_server.root / "silent" / "file.bin").write_bytes(PAYLOAD)
    http_server.stall.add("file.bin")
    remote = _remote(http_server, urls=[f"{http_server.url}/silent/file.bin"])
    start = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        download(remote, tmp_path / "cache", timeout=1, backoff=0, progress=False)
    assert time.monotonic() - start < 4
    assert len(http_server.requests) == 1  # not retried: silence now means silence again
    assert "timed out" in caught.value.reason()


def test_a_silent_host_is_not_asked_again_for_the_next_file_for_a_minute(http_server, tmp_path):
    http_server.stall |= {"a.bin", "b.bin"}
    first, second = _remote(http_server, name="a.bin"), _remote(http_server, name="b.bin")
    with pytest.raises(DownloadError):
        download(first, tmp_path / "cache", timeout=1, backoff=0, progress=False)
    start = time.monotonic()
    with pytest.raises(
        DownloadError,
        match=r"not asked: the host did not answer \d s ago .* after a kernel restart",
    ):
        download(second, tmp_path / "cache", timeout=1, backoff=0, progress=False)
    assert time.monotonic() - start < 0.5 and len(http_server.requests) == 1
    dl._SILENT[http_server.url.removeprefix("http://")] -= dl.SILENT_FOR  # a minute later
    http_server.stall.clear()
    assert download(second, tmp_path / "cache", backoff=0, progress=False).is_file()


def test_no_try_starts_after_the_deadline_without_a_byte(http_server, tmp_path):
    remote = _remote(http_server)
    http_server.statuses["file.bin"] = [(503, {})] * 20  # down for maintenance, for good
    start = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        download(remote, tmp_path / "cache", retries=20, backoff=1, deadline=2.5, progress=False)
    took = time.monotonic() - start
    assert 2.5 <= took < 4, took
    assert len(http_server.requests) == 2  # at 0 s and 1 s; the wait of 2 s ends at the deadline
    message = str(caught.value)
    assert "passed without a byte arriving" in message and "To get it by hand" in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_a_trickle_is_given_up_with_the_rate_it_ran_at(http_server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "RATE_WINDOW", 1.0)
    http_server.trickle["file.bin"] = 0.05  # 20 bytes/s: never times out, never finishes
    remote = _remote(http_server)
    start = time.monotonic()
    with pytest.raises(DownloadError, match=r"only 0\.0 kB/s"):
        download(remote, tmp_path / "cache", timeout=5, min_rate=1000, backoff=0, progress=False)
    assert time.monotonic() - start < 4
    assert len(http_server.requests) == 1 and _files(tmp_path / "cache") == ["file.bin.part"]


def test_429_waits_as_long_as_the_host_asks_then_gets_the_file(http_server, tmp_path):
    remote = _remote(http_server)
    http_server.statuses["file.bin"] = [(429, {"Retry-After": "1"})]
    start = time.monotonic()
    assert download(remote, tmp_path / "cache", backoff=0, progress=False).read_bytes() == PAYLOAD
    assert 1 <= time.monotonic() - start < 3
    assert len(http_server.requests) == 2


def test_429_asking_for_longer_than_the_deadline_is_not_waited_for(http_server, tmp_path):
    remote = _remote(http_server)
    http_server.statuses["file.bin"] = [(429, {"Retry-After": "3600"})]
    start = time.monotonic()
    with pytest.raises(DownloadError, match="asks to wait 3600 s; try later"):
        download(remote, tmp_path / "cache", backoff=0, progress=False)
    assert time.monotonic() - start < 2 and len(http_server.requests) == 1


def test_5xx_is_retried_and_a_lasting_one_gives_the_manual_steps(http_server, tmp_path):
    remote = _remote(http_server)
    http_server.statuses["file.bin"] = [(503, {}), (502, {})]
    assert download(remote, tmp_path / "cache", backoff=0, progress=False).read_bytes() == PAYLOAD
    assert len(http_server.requests) == 3

    other = _remote(http_server, name="other.bin")
    http_server.statuses["other.bin"] = [(500, {})] * 10
    with pytest.raises(DownloadError, match="HTTP 500"):
        download(other, tmp_path / "cache", retries=3, backoff=0, progress=False)
    assert len(http_server.requests) == 3 + 3


def test_a_server_that_ignores_range_gives_the_whole_file_not_a_splice(http_server, tmp_path):
    remote = _remote(http_server)
    http_server.cut_after["file.bin"] = 50_000
    http_server.ignore_range.add("file.bin")  # the retry's Range header is answered with 200
    assert download(remote, tmp_path / "cache", backoff=0, progress=False).read_bytes() == PAYLOAD
    assert [r for _, r in http_server.requests] == [None, "bytes=50000-"]


def test_a_wrong_content_length_resumes_and_verifies(http_server, tmp_path):
    remote = _remote(http_server)
    http_server.extra_length["file.bin"] = 1_000  # promises 1,000 bytes it never sends
    assert download(remote, tmp_path / "cache", backoff=0, progress=False).read_bytes() == PAYLOAD
    assert len(http_server.requests) == 2 and _files(tmp_path / "cache") == ["file.bin"]


def test_redirects_are_followed_and_a_loop_ends_quickly(http_server, tmp_path):
    remote = _remote(http_server, urls=[f"{http_server.url}/moved"])
    http_server.redirects["/moved"] = "/file.bin"
    assert download(remote, tmp_path / "cache", backoff=0, progress=False).read_bytes() == PAYLOAD

    loop = RemoteFile("loop.bin", (f"{http_server.url}/a",))
    http_server.redirects |= {"/a": "/b", "/b": "/a"}
    start = time.monotonic()
    with pytest.raises(DownloadError, match="redirect"):
        download(loop, tmp_path / "loop", backoff=0, progress=False)
    assert time.monotonic() - start < 3


def _child(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python process (a real one, with its own limits)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_a_full_disk_is_said_at_once_not_retried_and_leaves_no_part(http_server, tmp_path):
    remote = _remote(http_server, payload=os.urandom(3_000_000))
    result = _child(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
        from course_utils.download import DownloadError, RemoteFile, download
        remote = RemoteFile("file.bin", ({remote.urls[0]!r},), size={remote.size})
        try:
            download(remote, {str(tmp_path / "cache")!r}, progress=False)
        except DownloadError as err:
            print(err)
    """)
    assert "the disk is full" in result.stdout, result.stdout + result.stderr
    assert "Free some space, or point COURSE_DATA_DIR" in result.stdout
    assert len(http_server.requests) == 1 and _files(tmp_path / "cache") == []


def test_a_file_too_big_for_the_free_space_is_refused_before_the_first_byte(http_server, tmp_path):
    remote = RemoteFile("huge.bin", (f"{http_server.url}/huge.bin",), size=1 << 60)
    with pytest.raises(DownloadError, match="the disk is full"):
        download(remote, tmp_path / "cache", progress=False)
    assert http_server.requests == []


def test_a_read_only_folder_says_so_instead_of_a_raw_oserror(http_server, read_only):
    remote = _remote(http_server)
    result = read_only.run(
        f"""
        from course_utils.download import DownloadError, RemoteFile, download
        try:
            download(RemoteFile("file.bin", ({remote.urls[0]!r},)), {str(read_only.folder)!r})
        except DownloadError as err:
            print(err)
    """,
    )
    assert "cannot be written" in result.stdout and "read-only?" in result.stdout, result
    assert http_server.requests == []


def test_an_empty_read_only_data_folder_falls_back_to_the_sample_in_smoke(read_only):
    result = read_only.run(
        """
        from course_utils.config import get_profile
        from course_utils.datasets import load_dataset
        data = load_dataset("derma", profile=get_profile("smoke"))
        print("images:", len(data))
    """,
    )
    assert "No real data could be had" in result.stdout, result.stdout + result.stderr
    assert "cannot be written" in result.stdout and "images: " in result.stdout
