"""Safe extraction: nothing outside the target, no links, all or nothing."""

import stat
import zipfile

import pytest

from course_utils.download import DownloadError
from course_utils.extract import UnsafeArchiveError, safe_extract


def _leftovers(folder):
    files = folder.iterdir() if folder.exists() else []
    return sorted(p.name for p in files if not p.name.endswith(".lock"))


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            if isinstance(data, zipfile.ZipInfo):
                zf.writestr(data, name)
            else:
                zf.writestr(name, data)
    return path


def test_extract_skips_macos_junk(tmp_path):
    archive = _zip(
        tmp_path / "a.zip",
        [
            ("chest_xray/train/NORMAL/IM-1-1.jpeg", b"x"),
            ("chest_xray/.DS_Store", b"x"),
            ("__MACOSX/chest_xray/train/NORMAL/._IM-1-1.jpeg", b"x"),
        ],
    )
    target = safe_extract(archive, tmp_path / "out")
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert files == ["chest_xray/train/NORMAL/IM-1-1.jpeg"]


@pytest.mark.parametrize("evil", ["../evil.txt", "images/../../evil.txt", "/tmp/evil.txt"])
def test_path_traversal_is_refused_before_anything_is_written(tmp_path, evil):
    archive = _zip(tmp_path / "a.zip", [("images/ok.jpg", b"x"), (evil, b"owned")])
    with pytest.raises(UnsafeArchiveError, match="outside the target folder"):
        safe_extract(archive, tmp_path / "cache" / "out")
    assert _leftovers(tmp_path / "cache") == [] and not (tmp_path / "evil.txt").exists()


def test_symbolic_links_are_refused(tmp_path):
    link = zipfile.ZipInfo("images/link.jpg")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = _zip(tmp_path / "a.zip", [("/etc/passwd", link)])
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_damaged_archive_says_download_again(tmp_path):
    archive = tmp_path / "bad.zip"
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DownloadError, match="delete it and download it again"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
