"""Safe extraction: nothing outside the target, no links, duplicates or bombs, all or nothing."""

import stat
import warnings
import zipfile

import pytest

from course_utils import extract
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


def _entry_data_offset(archive, name):
    """Where an entry's stored bytes begin in the archive (after its local header)."""
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo(name)
    header = archive.read_bytes()[info.header_offset : info.header_offset + 30]
    name_length, extra_length = (
        int.from_bytes(header[26:28], "little"),
        int.from_bytes(header[28:30], "little"),
    )
    return info.header_offset + 30 + name_length + extra_length


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(extract, "MIN_LIMIT", 1 << 20)  # the floor, scaled down for a small bomb
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images/ok.jpg", b"x")
        zf.writestr("images/bomb.jpg", bytes(20 << 20))  # 20 MiB of zeros pack into ~20 kB
    assert extract.MAX_RATIO * archive.stat().st_size < 20 << 20
    with pytest.raises(UnsafeArchiveError, match="would unpack to 20,971,521 bytes") as err:
        safe_extract(archive, tmp_path / "out")
    assert f"delete {archive} and download it again" in str(err.value)
    assert _leftovers(tmp_path) == ["bomb.zip"]


def test_an_entry_that_lies_about_its_size_is_caught_and_nothing_kept(tmp_path):
    """The central directory says 100 bytes, the data unpacks to 20 MiB: only the declared bytes
    are ever read (then the CRC disagrees), so the lie is reported as damage, not obeyed."""
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images/a.jpg", b"fine")
        zf.writestr("images/big.jpg", bytes(20 << 20))
    data = bytearray(archive.read_bytes())
    central = data.rindex(b"PK\x01\x02")  # the last entry's central directory record
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")  # its uncompressed size
    archive.write_bytes(bytes(data))
    with pytest.raises(DownloadError, match=r"liar.zip is damaged \(Bad CRC-32") as err:
        safe_extract(archive, tmp_path / "out")
    assert "delete it and download it again" in str(err.value)
    assert _leftovers(tmp_path) == ["liar.zip"]


@pytest.mark.parametrize("second", ["images/a.jpg", "./images/a.jpg", "images//a.jpg"])
def test_duplicate_names_are_refused_naming_both(tmp_path, second):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the exact duplicate; it is the test
        archive = _zip(tmp_path / "a.zip", [("images/a.jpg", b"first"), (second, b"second")])
    with pytest.raises(UnsafeArchiveError, match="two entries named 'images/a.jpg'") as err:
        safe_extract(archive, tmp_path / "out")
    assert f"'images/a.jpg' and '{second}'" in str(err.value)
    assert _leftovers(tmp_path) == ["a.zip"]


def test_a_file_and_a_folder_of_the_same_name_are_refused(tmp_path):
    archive = _zip(tmp_path / "a.zip", [("images", b"a file"), ("images/a.jpg", b"x")])
    with pytest.raises(UnsafeArchiveError, match="both a file and a folder named 'images'"):
        safe_extract(archive, tmp_path / "out")
    assert _leftovers(tmp_path) == ["a.zip"]


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
def test_dot_entries_and_folder_entries_extract_in_place(tmp_path):
    archive = _zip(
        tmp_path / "a.zip",
        [
            ("./", b""),
            ("./chest_xray/", b""),
            ("./chest_xray/train/IM-1-1.jpeg", b"one"),
            ("chest_xray/./test/IM-2-1.jpeg", b"two"),
            ("chest_xray/empty/", b""),
            ("chest_xray/empty/", b""),  # a folder named twice is harmless
        ],
    )
    target = safe_extract(archive, tmp_path / "out")
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert files == ["chest_xray/test/IM-2-1.jpeg", "chest_xray/train/IM-1-1.jpeg"]
    assert (target / "chest_xray" / "train" / "IM-1-1.jpeg").read_bytes() == b"one"
    assert (target / "chest_xray" / "empty").is_dir()
    assert _leftovers(tmp_path) == ["a.zip", "out"]


@pytest.mark.parametrize(
    ("method", "says"),
    [(zipfile.ZIP_DEFLATED, "invalid block type"), (zipfile.ZIP_STORED, "Bad CRC-32")],
)
def test_damaged_member_data_says_download_again_and_leaves_nothing(tmp_path, method, says):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w", method) as zf:
        zf.writestr("images/first.jpg", b"a whole first image " * 100)
        zf.writestr("images/second.jpg", b"the second image " * 100)
    data = bytearray(archive.read_bytes())
    start = _entry_data_offset(archive, "images/second.jpg")
    data[start : start + 4] = b"\xff\xff\xff\xff"  # deflate: block type 3 (invalid); stored: CRC
    archive.write_bytes(bytes(data))
    with pytest.raises(DownloadError, match=f"a.zip is damaged .*{says}") as err:
        safe_extract(archive, tmp_path / "out")
    assert "delete it and download it again" in str(err.value)
    assert _leftovers(tmp_path) == ["a.zip"]  # the first image, extracted whole, went too
