"""Real faults, in real processes: two notebooks at once, a kill mid-way, damaged caches, a
read-only or full data folder, and decode workers whose notebook died."""

from __future__ import annotations

import io
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from course_utils import archives
from course_utils.download import RemoteFile
from course_utils.extract import safe_extract

ROOT = Path(__file__).resolve().parents[1]
FILES = 3000  # entries per zip: enough for extraction to take a moment, small enough to be quick
# Every child imports what it needs first (archives imports torch: seconds); no_writes() then
# makes every write to a file fail with EFBIG, as a full disk would (as root too, where chmod
# stops nothing).
PREAMBLE = f"""
import resource, signal, sys, time, types
from pathlib import Path
sys.modules["course_utils"] = types.ModuleType("course_utils")  # skip the package's __init__:
sys.modules["course_utils"].__path__ = [{str(ROOT / "course_utils")!r}]  # it imports torch
from course_utils import decode, extract

def no_writes():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

def wait_for(go):
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.002)
"""


def _child(body: str, *args: object) -> subprocess.Popen:
    """A Python process running PREAMBLE + body with `args` as sys.argv[1:], output piped."""
    return subprocess.Popen(
        [sys.executable, "-c", PREAMBLE + body, *map(str, args)],
        cwd=ROOT,
        env=os.environ.copy(),  # COURSE_DATA_DIR and the profile, as this test has them
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _fail(proc: subprocess.Popen, why: str) -> None:
    proc.kill()
    pytest.fail(f"{why}\n{proc.communicate()[1][-3000:]}")


def _finish(proc: subprocess.Popen, timeout: float = 120) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out


def _together(procs: list[subprocess.Popen], go: Path) -> list[str]:
    """Release processes waiting in wait_for(go) at the same moment; their outputs."""
    for proc in procs:
        if proc.stdout.readline() != "ready\n":
            _fail(proc, "the child did not start")
    go.touch()
    return [_finish(proc) for proc in procs]


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def _zips(tmp_path: Path) -> list[Path]:
    """HAM10000-like zips of FILES entries each: one flat, one inside a folder."""
    rng, paths = random.Random(0), []
    for part, prefix in ((1, ""), (2, "HAM10000_images_part_2/")):
        path = tmp_path / f"HAM10000_images_part_{part}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for i in range(FILES):
                zf.writestr(f"{prefix}ISIC_{part}{i:06d}.jpg", rng.randbytes(2048))
        paths.append(path)
    return paths


EXTRACT = """
archive_paths, target = [Path(p) for p in sys.argv[2].split(",")], Path(sys.argv[3])
if len(sys.argv) > 4:
    wait_for(sys.argv[4])
if sys.argv[1] == "flatten":
    from course_utils import archives
    archives._flatten(archive_paths, target)
else:
    extract.safe_extract(archive_paths[0], target)
print(sum(1 for p in target.rglob("*") if p.is_file()))
"""


@pytest.mark.parametrize("how", ["extract", "flatten"])
def test_two_processes_extracting_at_once_both_get_the_whole_folder(tmp_path, how):
    every = _zips(tmp_path)
    zips = every[: 1 if how == "extract" else 2]
    target, go = tmp_path / "images", tmp_path / "go"
    paths = ",".join(map(str, zips))
    outs = _together([_child(EXTRACT, how, paths, target, go) for _ in range(2)], go)
    assert outs == [f"{FILES * len(zips)}\n"] * 2
    assert sum(1 for _ in target.rglob("*.jpg")) == FILES * len(zips)
    assert _leftovers(tmp_path) == sorted(["go", "images", *(z.name for z in every)])


def _files_under(folders: list[Path]) -> int:
    return sum(len(files) for folder in folders for _, _, files in os.walk(folder))


@pytest.mark.parametrize("how", ["extract", "flatten"])
def test_a_kill_mid_extraction_leaves_no_folder_and_the_next_run_a_whole_one(tmp_path, how):
    every = _zips(tmp_path)
    zips = every[: 1 if how == "extract" else 2]
    target = tmp_path / "images"
    proc = _child(EXTRACT, how, ",".join(map(str, zips)), target)
    deadline = time.monotonic() + 60
    while _files_under(list(tmp_path.glob(".images.partial-*"))) < 300:  # well under way
        if proc.poll() is not None or time.monotonic() > deadline:
            _fail(proc, "the extraction ended (or never began) before it could be killed")
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists() and list(tmp_path.glob(".images.partial-*"))  # killed mid-way
    if how == "flatten":
        archives._flatten(zips, target)
    else:
        safe_extract(zips[0], target)
    assert sum(1 for _ in target.rglob("*.jpg")) == FILES * len(zips)
    assert _leftovers(tmp_path) == sorted(["images", *(z.name for z in every)])  # stale ones gone


XRAYS = (
    "train/NORMAL/IM-0115-0001.jpeg",
    "train/PNEUMONIA/person1_bacteria_1.jpeg",
    "test/NORMAL/IM-0001-0001.jpeg",
    "test/PNEUMONIA/person100_bacteria_475.jpeg",
)


def _jpeg(grey: int, size: tuple[int, int] = (80, 70)) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, grey).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def xray(http_server, monkeypatch):
    """The chest X-ray archive (four images) served over HTTP; the registry points at it."""
    with zipfile.ZipFile(http_server.root / "ChestXRay2017.zip", "w") as zf:
        for i, name in enumerate(XRAYS):
            zf.writestr(f"chest_xray/{name}", _jpeg(40 + 50 * i))
    url = f"{http_server.url}/ChestXRay2017.zip"
    monkeypatch.setattr(archives, "CHEST_XRAY", RemoteFile("ChestXRay2017.zip", (url,)))
    return url


PREPARE = """
from course_utils import archives
from course_utils.download import RemoteFile
archives.CHEST_XRAY = RemoteFile("ChestXRay2017.zip", (sys.argv[1],))
decoding = archives.decode_images
def counted(*args, **kwargs):
    print("decoding", flush=True)
    return decoding(*args, **kwargs)
archives.decode_images = counted
if sys.argv[2] == "go":
    wait_for(sys.argv[3])
elif sys.argv[2] == "no_writes":
    no_writes()
    for place in sys.argv[3:]:  # the fault is real: nothing can be written there
        try:
            Path(place).write_bytes(b"x")
        except OSError as err:
            print("cannot write:", err.strerror, flush=True)
data = archives.prepare_original("xray", 24)
print(len(data), int(data.images.astype(int).sum()))
"""


def _signature(data) -> str:
    return f"{len(data)} {int(data.images.astype(int).sum())}\n"


def test_two_processes_preparing_at_once_decode_once_and_agree(xray, tmp_path):
    go = tmp_path / "go"
    outs = _together([_child(PREPARE, xray, "go", go) for _ in range(2)], go)
    assert sorted(out.count("decoding") for out in outs) == [0, 1]  # the other one waited
    data = archives.prepare_original("xray", 24)
    assert [out.splitlines()[-1] + "\n" for out in outs] == [_signature(data)] * 2


def _cache_files(size: int = 24) -> tuple[Path, Path]:
    cache = archives.prepared_path("xray", size)
    return cache, cache.with_suffix(".csv")


def _cut(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


DAMAGES = {  # what a kill or a bad copy leaves → what the error says
    "npz cut in half": (0, lambda data: len(data) // 2, "BadZipFile: File is not a zip file"),
    "csv cut mid-line": (1, lambda data: len(data) - 5, "ends in the middle of a line"),
    "csv cut after a line": (1, lambda data: data.index(b"\n", 100) + 1, "rows for 4 images"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_cache_is_rebuilt_from_the_archives_at_hand(xray, http_server, capsys, damage):
    first = archives.prepare_original("xray", 24)
    which, keep, says = DAMAGES[damage]
    npz, csv = _cache_files()
    _cut((npz, csv)[which], keep((npz, csv)[which].read_bytes()))
    asked = len(http_server.requests)
    capsys.readouterr()
    again = archives.prepare_original("xray", 24)
    out = capsys.readouterr().out
    assert f"The prepared cache {npz.name} is damaged" in out and says in out
    assert "rebuilding it from" in out and len(out.splitlines()) == 1  # one line
    assert len(http_server.requests) == asked  # rebuilt from the archive on disk
    np.testing.assert_array_equal(again.images, first.images)
    assert list(again.metadata["file"]) == list(first.metadata["file"])
    with np.load(npz) as arrays:  # whole again
        assert len(arrays["images"]) == len(pd.read_csv(csv)) == len(XRAYS)


def test_a_damaged_cache_without_its_archives_names_the_file_and_the_fix(xray, tmp_path):
    archives.prepare_original("xray", 24)
    (tmp_path / "data" / "chest_xray" / "ChestXRay2017.zip").unlink()  # space freed, as advised
    npz, csv = _cache_files()
    _cut(npz, npz.stat().st_size // 2)
    with pytest.raises(archives.DamagedCacheError) as err:
        archives.prepare_original("xray", 24)
    message = str(err.value)
    assert f"The prepared cache {npz} is damaged (BadZipFile" in message
    assert f"Delete {npz} and {csv}, then run again with network access" in message


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
    }


def test_a_read_only_data_folder_with_the_cache_is_only_read(xray, tmp_path):
    data = archives.prepare_original("xray", 24)
    folder = tmp_path / "data"
    before = _snapshot(folder)
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
    for path in modes:  # a read-only stick for a normal user; the write limit stops root too
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        out = _finish(_child(PREPARE, xray, "no_writes", tmp_path / "probe"))
    finally:
        for path, mode in modes.items():
            path.chmod(mode)
    assert "cannot write: File too large" in out
    assert out.splitlines()[-1] + "\n" == _signature(data) and "decoding" not in out
    assert "Could not keep" not in out and _snapshot(folder) == before  # nothing written


def test_a_full_disk_keeps_the_images_in_memory_and_leaves_no_partial_files(xray, tmp_path):
    data = archives.prepare_original("xray", 24)  # downloaded and extracted; then the cache goes
    for path in _cache_files():
        path.unlink()
    folder = tmp_path / "data"
    archive = folder / "chest_xray" / "ChestXRay2017.zip"
    body = f"""
from course_utils import archives  # (it imports torch, which needs to write a temporary file)
no_writes()
try:
    extract.safe_extract(Path({str(archive)!r}), Path({str(folder / "again")!r}))
except OSError as err:
    print("extract:", err)
{PREPARE}"""
    out = _finish(_child(body, xray, "no_writes"))
    assert f"extract: [Errno 27] Could not write {folder / 'again'} (File too large)" in out
    assert "free some disk space there" in out
    assert f"Could not keep the decoded images in {_cache_files()[0]} (File too large" in out
    assert out.count("decoding") == 1 and out.splitlines()[-1] + "\n" == _signature(data)
    assert not list(folder.rglob("*partial*")) and not (folder / "again").exists()
    assert not any(path.exists() for path in _cache_files())


def _children(pid: int) -> list[int]:
    """Every process descended from `pid` (read from /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        found += (kids := parents.get(todo.pop(), []))
        todo += kids
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent has not reaped it


DECODE = """
print("ready", flush=True)
decode.decode_images([sys.argv[1]] * 50_000, 16, grey=False, workers=2)  # ~10 s on two cores
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_decode_workers_exit_when_their_parent_is_killed(tmp_path):
    image = tmp_path / "photo.jpeg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (512, 512, 3), np.uint8)).save(image)
    proc = _child(DECODE, image)
    if proc.stdout.readline() != "ready\n":
        _fail(proc, "the child did not start")
    deadline = time.monotonic() + 30
    while len(workers := _children(proc.pid)) < 2:
        if proc.poll() is not None or time.monotonic() > deadline:
            _fail(proc, "no two decode workers appeared")
        time.sleep(0.05)
    time.sleep(1)  # busy decoding
    assert proc.poll() is None and all(map(_running, workers))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)  # not its output: workers that outlive it keep those pipes open
    deadline = time.monotonic() + 5
    while (alive := [pid for pid in workers if _running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive:  # do not leave them behind if the test fails
        os.kill(pid, signal.SIGKILL)
    proc.stdout.close()
    proc.stderr.close()
    assert not alive, f"decode workers {alive} outlived their parent by 5 s"
