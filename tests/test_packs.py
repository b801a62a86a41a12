"""Prepared packs: made from real prepared data, checked against their manifest, and served
through COURSE_MIRROR by a real HTTP server so a learner fetches arrays, not archives."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from test_datasets import local, xray_archive

from course_utils import archives, datasets, packs
from course_utils.config import get_profile

SMOKE = get_profile("smoke")


@pytest.fixture
def kermany(http_server, monkeypatch):
    """The X-ray fixture archive on the test server, as the published file."""
    xray_archive(http_server)
    monkeypatch.setattr(archives, "CHEST_XRAY", local(http_server, "ChestXRay2017.zip"))
    return http_server


def _prepared_xray(size: int = 16):
    """The X-ray fixture archive downloaded and decoded, as a learner's data/ holds it."""
    data = datasets.load_dataset("xray", source="original", image_size=size, profile=SMOKE)
    return data, archives.prepared_path("xray", size)


def test_a_pack_lists_every_file_with_its_sha256_and_the_datasets_licence(kermany, tmp_path):
    _, npz = _prepared_xray()
    weights = tmp_path / "vgg16-397923af.pth"
    weights.write_bytes(b"not really weights")
    runs = tmp_path / "results"
    (runs / "smoke" / "toy").mkdir(parents=True)
    (runs / "smoke" / "toy" / "info.json").write_text("{}")
    (runs / "smoke" / ".toy.lock").write_text("")
    manifest = packs.write_pack(tmp_path / "pack", [("xray", npz)], [weights], runs)
    paths = [f["path"] for f in manifest["files"]]
    assert paths == [
        "prepared/chest_xray_16px.npz",
        "prepared/chest_xray_16px.csv",
        "weights/vgg16-397923af.pth",
        "results/smoke/toy/info.json",  # the lock stays out
    ]
    assert manifest["datasets"]["xray"]["licence"] == "CC BY 4.0"
    assert json.loads((tmp_path / "pack" / "manifest.json").read_text()) == manifest
    assert packs.check_pack(tmp_path / "pack") == []
    (tmp_path / "pack" / "weights" / "vgg16-397923af.pth").write_bytes(b"changed")
    assert packs.check_pack(tmp_path / "pack") == [
        "weights/vgg16-397923af.pth is not the file the manifest records (damaged?)"
    ]


def _serve_pack(server, tmp_path, monkeypatch, npz):
    """A pack of `npz` on the test server as COURSE_MIRROR, and an empty data folder."""
    packs.write_pack(server.root / "pack", [("xray", npz)], [])
    monkeypatch.setenv("COURSE_MIRROR", f"{server.url}/pack")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "learner"))
    server.requests.clear()


def test_behind_a_mirror_with_a_pack_the_arrays_come_instead_of_the_archive(
    kermany, tmp_path, monkeypatch, capsys
):
    original, npz = _prepared_xray()
    _serve_pack(kermany, tmp_path, monkeypatch, npz)
    data = datasets.load_dataset("xray", image_size=16, profile=SMOKE)  # auto: the pack has it
    assert "fetching the prepared arrays, not the archives" in capsys.readouterr().out
    fetched = [path for path, _ in kermany.requests]
    assert not any("ChestXRay2017.zip" in p for p in fetched), fetched
    assert data.source == original.source
    np.testing.assert_array_equal(data.images, original.images)
    np.testing.assert_array_equal(data.official_split, original.official_split)
    assert list(data.groups) == list(original.groups)
    assert archives.prepared_path("xray", 16).is_file()


def test_a_damaged_file_in_the_pack_is_refused_and_the_archive_used(
    kermany, tmp_path, monkeypatch, capsys
):
    original, npz = _prepared_xray()
    _serve_pack(kermany, tmp_path, monkeypatch, npz)
    served = kermany.root / "pack" / "prepared" / npz.name
    served.write_bytes(served.read_bytes()[:-100] + bytes(100))  # same size, other bytes
    (kermany.root / "pack" / "chest_xray").mkdir()  # the mirror also has the archive
    shutil.copy(kermany.root / "ChestXRay2017.zip", kermany.root / "pack" / "chest_xray")
    data = datasets.load_dataset("xray", source="original", image_size=16, profile=SMOKE)
    out = capsys.readouterr().out
    assert "The mirror's pack could not give chest_xray_16px.npz" in out and "sha256" in out
    np.testing.assert_array_equal(data.images, original.images)  # decoded from the archive


def test_prefetch_writes_a_pack_of_what_is_ready(kermany, tmp_path):
    env_code = f"""
import sys
from course_utils import archives
from course_utils.remote import RemoteFile
archives.CHEST_XRAY = RemoteFile("ChestXRay2017.zip", ({kermany.url + "/ChestXRay2017.zip"!r},),
                                 sha256={archives.CHEST_XRAY.sha256!r})
from course_utils.prefetch import main
sys.exit(main(["--sizes", "16", "--datasets", "xray", "--archs", "efficientnet_lite0",
               "--pack", {str(tmp_path / "pack")!r}]))
"""
    done = subprocess.run(
        [sys.executable, "-c", env_code], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Pack in" in done.stdout and "python -m course_utils.mirror" in done.stdout
    assert packs.check_pack(tmp_path / "pack") == []
    listed = [
        f["path"] for f in json.loads((tmp_path / "pack" / "manifest.json").read_text())["files"]
    ]
    assert listed == ["prepared/chest_xray_16px.npz", "prepared/chest_xray_16px.csv"]
