import hashlib
import os
import re
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from course_utils.download import (
    DownloadError,
    RemoteFile,
    download,
    verify,
)

PAYLOAD = os.urandom(300_000)


def _remote(server, name="file.bin", payload=PAYLOAD, **checks) -> RemoteFile:
    (server.root / name).write_bytes(payload)
    return RemoteFile(name, (f"{server.url}/{name}",), **checks)


def _leftovers(folder):
    """What a download left in `folder`, but its (empty) lock file."""
    files = folder.iterdir() if folder.exists() else []
    return sorted(p.name for p in files if not p.name.endswith(".lock"))


def test_clean_download_is_verified_and_renamed(http_server, tmp_path):
    remote = _remote(http_server, md5=hashlib.md5(PAYLOAD).hexdigest(), size=len(PAYLOAD))
    path = download(remote, tmp_path / "cache", progress=False)
    assert path.read_bytes() == PAYLOAD and _leftovers(tmp_path / "cache") == [
        ".file.bin.verified",
        "file.bin",
    ]
    download(remote, tmp_path / "cache", progress=False)  # already there: no second request
    assert len(http_server.requests) == 1


def test_a_cut_connection_resumes_where_it_stopped(http_server, tmp_path):
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    remote = _remote(http_server, sha256=sha)
    http_server.cut_after["file.bin"] = 100_000
    path = download(remote, tmp_path / "cache", backoff=0, progress=False)
    assert path.read_bytes() == PAYLOAD
    assert http_server.requests == [("/file.bin", None), ("/file.bin", "bytes=100000-")]


def test_checksum_mismatch_is_an_error_and_leaves_nothing(http_server, tmp_path):
    remote = _remote(http_server, md5="0" * 32)
    with pytest.raises(DownloadError) as err:
        download(remote, tmp_path / "cache", backoff=0, progress=False)
    message = str(err.value)
    assert "md5" in message and "expected 00000000" in message
    assert f"Save it as {tmp_path / 'cache' / 'file.bin'}" in message and remote.urls[0] in message
    assert _leftovers(tmp_path / "cache") == []


def test_a_truncated_zip_never_lands_in_the_cache(http_server, tmp_path):
    archive = tmp_path / "whole.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("images/a.jpg", os.urandom(50_000))
        zf.writestr("images/b.jpg", os.urandom(50_000))
    remote = _remote(http_server, "ISIC.zip", archive.read_bytes()[:60_000])  # no checksum known
    with pytest.raises(DownloadError, match="not a readable zip archive"):
        download(remote, tmp_path / "cache", backoff=0, progress=False)
    assert _leftovers(tmp_path / "cache") == []


def test_a_mirror_is_used_when_the_first_host_fails(http_server, tmp_path):
    (http_server.root / "file.bin").write_bytes(PAYLOAD)
    remote = RemoteFile(
        "file.bin", (f"{http_server.url}/gone/file.bin", f"{http_server.url}/file.bin")
    )
    assert download(remote, tmp_path, backoff=0, progress=False).read_bytes() == PAYLOAD
    assert [path for path, _ in http_server.requests] == ["/gone/file.bin", "/file.bin"]


def test_an_unreachable_host_gives_the_manual_steps(tmp_path, monkeypatch):
    pauses = []
    monkeypatch.setattr("course_utils.download.time.sleep", pauses.append)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    remote = RemoteFile("data.zip", (f"http://127.0.0.1:{port}/data.zip",), md5="ab" * 16)
    with pytest.raises(DownloadError) as err:
        download(remote, tmp_path / "cache", manual="Log in first.", progress=False)
    message = str(err.value)
    for expected in (
        "Could not download data.zip",
        "Connection refused",
        "Log in first.",
        f"Save it as {tmp_path / 'cache' / 'data.zip'}",
        "md5 abababab",
    ):
        assert expected in message
    assert pauses == []  # nobody listens: no point in waiting and retrying
    assert _leftovers(tmp_path / "cache") == []  # a folder to save into, nothing in it


def test_verify_reports_size_and_damaged_members(tmp_path):
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("a.txt", b"hello world" * 100)
    assert verify(path, RemoteFile("x.zip", ())) is None
    assert "size" in verify(path, RemoteFile("x.zip", (), size=1))
    data = bytearray(path.read_bytes())
    data[data.index(b"hello")] ^= 0xFF  # flip a byte inside the member
    path.write_bytes(bytes(data))
    assert "a.txt is damaged" in verify(path, RemoteFile("x.zip", ()))


def test_a_file_put_there_by_hand_is_verified_before_use(http_server, tmp_path):
    (http_server.root / "data.zip").write_bytes(b"the real bytes" * 100)
    remote = RemoteFile(
        "data.zip",
        (f"{http_server.url}/data.zip",),
        md5=hashlib.md5(b"the real bytes" * 100).hexdigest(),
    )
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / "data.zip").write_bytes(b"a login page saved by the browser")
    with pytest.raises(DownloadError, match="it is not the expected file") as err:
        download(remote, folder, progress=False)
    assert "the file on disk: md5" in str(err.value) and remote.urls[0] in str(err.value)
    (folder / "data.zip").unlink()
    assert download(remote, folder, progress=False).read_bytes() == b"the real bytes" * 100
    assert http_server.requests == [("/data.zip", None)]
    assert download(remote, folder, progress=False).is_file()  # verified, not fetched again
    (folder / "data.zip").write_bytes(b"changed by hand")  # a change is noticed: checked again
    with pytest.raises(DownloadError, match="it is not the expected file"):
        download(remote, folder, progress=False)


def test_the_mirror_is_tried_first_and_verified_like_the_published_host(
    http_server, tmp_path, monkeypatch
):
    published = _remote(http_server, md5=hashlib.md5(PAYLOAD).hexdigest())
    remote = RemoteFile(published.name, published.urls, md5=published.md5, mirror_path="set/f.bin")
    (http_server.root / "mirror" / "set").mkdir(parents=True)
    (http_server.root / "mirror" / "set" / "f.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("COURSE_MIRROR", f"{http_server.url}/mirror/")
    download(remote, tmp_path / "a", progress=False)
    assert [path for path, _ in http_server.requests] == ["/mirror/set/f.bin"]

    # A mirror that serves a different file is refused; the published host is used instead.
    (http_server.root / "mirror" / "set" / "f.bin").write_bytes(b"stale copy")
    assert download(remote, tmp_path / "b", progress=False).read_bytes() == PAYLOAD
    assert [path for path, _ in http_server.requests[1:]] == ["/mirror/set/f.bin", "/file.bin"]

    # Without the file on the mirror (404), the published host is next; the steps name both.
    (http_server.root / "mirror" / "set" / "f.bin").unlink()
    assert download(remote, tmp_path / "c", progress=False).read_bytes() == PAYLOAD
    (http_server.root / "file.bin").unlink()
    with pytest.raises(DownloadError) as err:
        download(remote, tmp_path / "d", progress=False, backoff=0)
    assert f"{http_server.url}/mirror/set/f.bin: HTTP 404" in err.value.problems[0]
    assert err.value.reason() == err.value.problems[0] and remote.urls[0] in str(err.value)


def test_a_hash_prefix_is_checked_like_a_checksum(http_server, tmp_path):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    good = _remote(http_server, sha256_prefix=digest[:8])
    assert download(good, tmp_path / "good", progress=False).read_bytes() == PAYLOAD
    with pytest.raises(DownloadError, match="expected one starting 00000000"):
        download(_remote(http_server, sha256_prefix="00000000"), tmp_path / "bad", progress=False)
    assert _leftovers(tmp_path / "bad") == []


def test_nothing_in_the_course_can_override_a_published_checksum():
    """Only the rehearsal's sitecustomize (tests/rehearsal/site, never installed) substitutes
    its fixtures' checksums; course_utils has no setting that would."""
    import course_utils

    package = Path(course_utils.__file__).parent
    for source in package.rglob("*.py"):
        text = source.read_text()
        assert "REHEARSAL" not in text and "sitecustomize" not in text, source


def test_an_html_page_sent_with_status_200_is_not_the_file(http_server, tmp_path):
    """A host that rate-limits answers a web page with 200: never stamped, the reason given."""
    remote = _remote(http_server, name="groupings.csv", payload=b"image,lesion_id\nA,1\n")
    http_server.html_instead.add("groupings.csv")
    with pytest.raises(DownloadError, match="sent a web page"):
        download(remote, tmp_path / "cache", progress=False, backoff=0)
    assert _leftovers(tmp_path / "cache") == []
    http_server.html_instead.clear()  # the host recovers: the next call gets the real file
    assert download(remote, tmp_path / "cache", progress=False).read_bytes().startswith(b"image")


def test_a_csv_without_checksum_is_checked_for_its_header_and_last_line(http_server, tmp_path):
    columns = ("image", "lesion_id", "diagnosis_confirm_type")
    good = b"image,lesion_id,diagnosis_confirm_type\nISIC_1,HAM_1,histo\n"
    for name, payload, problem in [
        ("cut.csv", good[:-9], "ends in the middle of a line"),
        ("other.csv", b"a,b\n1,2\n", "lacks the column(s)"),
    ]:
        remote = _remote(http_server, name=name, payload=payload)
        remote = RemoteFile(remote.name, remote.urls, columns=columns)
        with pytest.raises(DownloadError, match=re.escape(problem)):
            download(remote, tmp_path / "cache", progress=False, backoff=0)
    remote = _remote(http_server, name="good.csv", payload=good)
    remote = RemoteFile(remote.name, remote.urls, columns=columns)
    assert download(remote, tmp_path / "cache", progress=False).read_bytes() == good
    assert _leftovers(tmp_path / "cache") == [".good.csv.verified", "good.csv"]


def test_a_206_that_starts_at_byte_0_is_not_spliced_onto_the_part(http_server, tmp_path):
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    remote = _remote(http_server, sha256=sha)
    http_server.cut_after["file.bin"] = 100_000
    http_server.range_from_zero.add("file.bin")
    path = download(remote, tmp_path / "cache", backoff=0, progress=False)
    assert path.read_bytes() == PAYLOAD  # started over instead of appending the whole file


def test_a_stale_part_after_416_is_fetched_again_from_the_first_byte(http_server, tmp_path):
    """A .part as long as the file but with other bytes: 416 to its Range, then a fresh try."""
    remote = _remote(http_server, md5=hashlib.md5(PAYLOAD).hexdigest())
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "file.bin.part").write_bytes(os.urandom(len(PAYLOAD)))
    assert download(remote, tmp_path / "cache", backoff=0, progress=False).read_bytes() == PAYLOAD
    assert [r for _, r in http_server.requests] == [f"bytes={len(PAYLOAD)}-", None]


def test_two_processes_downloading_one_file_get_it_whole_and_once(http_server, tmp_path):
    """Two notebooks open at once: one fetches, the other waits for the lock, then uses it."""
    remote = _remote(http_server, md5=hashlib.md5(PAYLOAD).hexdigest())
    http_server.delay = 1.0
    code = (
        "import sys; from pathlib import Path; from course_utils.download import RemoteFile, "
        "download; print(download(RemoteFile(sys.argv[1], (sys.argv[2],), md5=sys.argv[3]), "
        "Path(sys.argv[4]), progress=False))"
    )
    args = [remote.name, remote.urls[0], remote.md5, str(tmp_path / "cache")]
    clients = [
        subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [client.communicate(timeout=120)[0].strip() for client in clients]
    assert [client.returncode for client in clients] == [0, 0]
    assert [out.splitlines()[-1] for out in outputs] == [str(tmp_path / "cache" / "file.bin")] * 2
    assert sum("Downloading file.bin from 127.0.0.1" in out for out in outputs) == 1  # said once
    assert (tmp_path / "cache" / "file.bin").read_bytes() == PAYLOAD
    assert len(http_server.requests) == 1  # the second process used the first one's file
