"""Kaggle's attached copies, read in place from a read-only /kaggle/input/ in their real layouts."""

import io
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from course_utils import archives, datasets, kaggle
from course_utils.catalog import DERMA_CLASSES
from course_utils.config import data_dir, get_profile
from course_utils.download import RemoteFile

# Seven HAM10000 images of five lesions, as Kaggle's HAM10000_metadata.csv has them.
HAM = pd.DataFrame(
    {
        "lesion_id": [
            "HAM_0000118",
            "HAM_0000118",
            "HAM_0002730",
            "HAM_0001466",
            "HAM_0002761",
            "HAM_0004143",
            "HAM_0004143",
        ],
        "image_id": [f"ISIC_{24306 + i:07d}" for i in range(7)],
        "dx": ["bkl", "bkl", "nv", "mel", "df", "bcc", "bcc"],
        "dx_type": ["histo", "histo", "follow_up", "histo", "consensus", "histo", "confocal"],
        "age": [80.0, 80.0, 75.0, None, 60.0, 65.0, 65.0],
        "sex": ["male", "male", "female", "male", "female", "female", "female"],
        "localization": ["scalp", "scalp", "back", "face", "trunk", "neck", "neck"],
    }
)
PART_1 = 4  # images in HAM10000_images_part_1; the rest are in part_2
XRAYS = {  # Kaggle's chest_xray/<split>/<class>/<file> → patient, per Kermany et al.'s names
    "test/NORMAL/IM-0001-0001.jpeg": "IM-0001",
    "test/PNEUMONIA/person100_bacteria_475.jpeg": "person100",
    "train/NORMAL/IM-0115-0001.jpeg": "IM-0115",
    "train/NORMAL/IM-0117-0001.jpeg": "IM-0117",
    "train/NORMAL/NORMAL2-IM-0115-0002.jpeg": "IM-0115",
    "train/PNEUMONIA/person1_bacteria_1.jpeg": "person1",
    "train/PNEUMONIA/person1_virus_6.jpeg": "person1",
    "train/PNEUMONIA/person3_bacteria_10.jpeg": "person3",
    "val/NORMAL/NORMAL2-IM-1427-0001.jpeg": "IM-1427",
    "val/PNEUMONIA/person1946_bacteria_4874.jpeg": "person1946",
}
LAYOUTS = {  # where Kaggle mounts a dataset: /kaggle/input/<slug>/, or nested deeper
    "slug": lambda owner, slug: f"{slug}",
    "nested": lambda owner, slug: f"datasets/{owner}/{slug}/versions/2",
}
WRONG_COPY = (0, 255, 0)  # the lower-case duplicates get another colour, to see which is read


def jpeg(colour, size=(60, 45), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def ham_colour(dx: str) -> tuple[int, int, int]:
    return (30 * DERMA_CLASSES.index(dx), 100, 200 - 20 * DERMA_CLASSES.index(dx))


def write(path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def ham10000_copy(folder) -> None:
    """kmader/skin-cancer-mnist-ham10000: both image folders twice, metadata, pixel tables."""
    for i, row in enumerate(HAM.to_dict("records")):
        part = 1 if i < PART_1 else 2
        name = f"{row['image_id']}.jpg"
        write(folder / f"HAM10000_images_part_{part}" / name, jpeg(ham_colour(row["dx"])))
        write(folder / f"ham10000_images_part_{part}" / name, jpeg(WRONG_COPY))
    HAM.to_csv(folder / "HAM10000_metadata.csv", index=False)
    for table in ("hmnist_8_8_L.csv", "hmnist_28_28_RGB.csv"):
        (folder / table).write_text("pixel0000,pixel0001,label\n12,34,2\n")


def chest_xray_copy(folder) -> None:
    """paultimothymooney/chest-xray-pneumonia: one tree, its duplicate inside, macOS junk."""
    for i, name in enumerate(XRAYS):
        grey = 60 if "/NORMAL/" in name else 190
        rgb = i == 3  # a few of the real files are RGB
        data = jpeg((grey,) * 3 if rgb else grey, (80, 70), "RGB" if rgb else "L")
        write(folder / "chest_xray" / name, data)
        write(folder / "chest_xray" / "chest_xray" / name, data)  # the whole tree again
        split, label, file = name.split("/")
        for junk in ("chest_xray/__MACOSX/chest_xray", "__MACOSX/chest_xray"):
            write(folder / junk / split / label / f"._{file}", b"\x00\x05\x16\x07 Mac OS X")
    write(folder / "chest_xray" / "train" / "PNEUMONIA" / "._person1_bacteria_1.jpeg", b"\x00")
    for place in ("chest_xray", "chest_xray/train", "chest_xray/chest_xray"):
        write(folder / place / ".DS_Store", b"\x00\x00\x00\x01Bud1")


def snapshot(root) -> dict:
    """Every entry under `root`: its kind, size, mode and modification time."""
    entries = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        entries[path.relative_to(root).as_posix()] = (
            stat.S_IFMT(info.st_mode),
            info.st_size,
            info.st_mtime_ns,
            stat.S_IMODE(info.st_mode),
        )
    return entries


def set_writable(root, writable: bool) -> None:
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755 if writable else 0o555)
        else:
            path.chmod(0o644 if writable else 0o444)


@pytest.fixture(params=list(LAYOUTS))
def attached(request, tmp_path, monkeypatch, http_server):
    """Both datasets attached, read-only, in one Kaggle input folder; any download would be
    asked of the test server (which would record it) and fail."""
    root = tmp_path / "kaggle_input"
    place = LAYOUTS[request.param]
    ham10000_copy(root / place("kmader", "skin-cancer-mnist-ham10000"))
    chest_xray_copy(root / place("paultimothymooney", "chest-xray-pneumonia"))
    set_writable(root, False)
    before = snapshot(root)
    monkeypatch.setenv("COURSE_KAGGLE_INPUT", str(root))
    monkeypatch.delenv("COURSE_MIRROR", raising=False)
    gone = lambda f: RemoteFile(f.name, (f"{http_server.url}/{f.name}",))  # noqa: E731
    monkeypatch.setattr(
        archives, "HAM10000_DATAVERSE", tuple(map(gone, archives.HAM10000_DATAVERSE))
    )
    monkeypatch.setattr(archives, "HAM10000_ISIC", tuple(map(gone, archives.HAM10000_ISIC)))
    monkeypatch.setattr(archives, "CHEST_XRAY", gone(archives.CHEST_XRAY))
    yield root
    after = snapshot(root)
    set_writable(root, True)  # so that pytest can remove tmp_path
    assert after == before, "something under the Kaggle input folder changed"
    assert http_server.requests == []  # nothing downloaded, nor even asked for


def test_ham10000_is_read_in_place_each_image_once(attached, capsys):
    data = datasets.load_dataset("derma", source="original", image_size=16, profile=get_profile())
    assert data.images.shape == (len(HAM), 16, 16, 3)  # not twice: the duplicates are skipped
    assert [DERMA_CLASSES[y] for y in data.labels] == list(HAM["dx"])
    assert list(data.groups) == list(HAM["lesion_id"])
    assert list(data.metadata.columns[:7]) == list(datasets.HAM10000_COLUMNS)
    assert data.metadata["age"].isna().sum() == 1 and data.official_split is None
    for image, dx in zip(data.images, HAM["dx"], strict=True):  # the upper-case copies
        np.testing.assert_allclose(image.mean(axis=(0, 1)), ham_colour(dx), atol=3)
    out = capsys.readouterr().out
    assert "Using the attached Kaggle dataset kmader/skin-cancer-mnist-ham10000 in place" in out
    assert "nothing is downloaded" in out and "Add Input" not in out
    assert archives.prepared_path("derma", 16).is_file()  # the cache is under data_dir()
    assert not (data_dir() / "ham10000" / "HAM10000_images").exists()  # nothing extracted


def test_chest_xray_is_read_from_one_tree_with_its_val_folder(attached, capsys):
    data = datasets.load_dataset("xray", source="original", image_size=16, profile=get_profile())
    assert data.images.shape == (len(XRAYS), 16, 16)  # not 3×: no duplicate tree, no ._ files
    files = sorted(XRAYS)
    assert list(data.metadata["file"]) == [f"chest_xray/{f}" for f in files]
    assert list(data.labels) == [int("/PNEUMONIA/" in f) for f in files]
    assert list(data.groups) == [XRAYS[f] for f in files]
    assert list(data.groups) == [datasets.xray_patient(f.split("/")[-1]) for f in files]
    assert len(set(data.groups)) == 8  # NORMAL2-IM-0115 joins IM-0115, person1's two images join
    assert list(data.official_split) == [f.split("/")[0] for f in files]
    assert {s: len(part) for s, part in data.split("official").items()} == {
        "train": 6,
        "val": 2,
        "test": 2,
    }
    out = capsys.readouterr().out
    assert "Using the attached Kaggle dataset paultimothymooney/chest-xray-pneumonia" in out
    assert not (data_dir() / "chest_xray" / "ChestXRay2017").exists()  # nothing extracted


def test_the_finders_pick_one_copy_of_each(attached):
    csv, folders = kaggle.ham10000_input()
    assert csv.name == "HAM10000_metadata.csv"
    assert [f.name for f in folders] == ["HAM10000_images_part_1", "HAM10000_images_part_2"]
    assert len(kaggle.ham10000_files(folders)) == len(HAM)
    root = kaggle.chest_xray_input()
    assert root.name == "chest_xray" and root.parent.name != "chest_xray"  # not the nested copy
    assert len(kaggle.chest_xray_files(root)) == len(XRAYS)
    assert kaggle.is_attached("derma") and kaggle.is_attached("xray")


def test_a_damaged_cache_is_rebuilt_from_the_attached_copy(attached, capsys):
    first = datasets.load_dataset("xray", source="original", image_size=16, profile=get_profile())
    cache = archives.prepared_path("xray", 16)
    cache.write_bytes(cache.read_bytes()[:100])  # cut short, as by a full disk
    again = datasets.load_dataset("xray", source="original", image_size=16, profile=get_profile())
    assert "is damaged" in capsys.readouterr().out
    np.testing.assert_array_equal(again.images, first.images)


def test_a_wrong_metadata_file_is_named_and_left_alone(tmp_path, monkeypatch):
    folder = tmp_path / "kaggle_input" / "skin-cancer-mnist-ham10000"
    ham10000_copy(folder)
    HAM.drop(columns="lesion_id").to_csv(folder / "HAM10000_metadata.csv", index=False)
    monkeypatch.setenv("COURSE_KAGGLE_INPUT", str(tmp_path / "kaggle_input"))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['lesion_id'\]") as err:
        datasets.load_dataset("derma", source="original", image_size=16, profile=get_profile())
    assert "Add Input → Datasets → kmader/skin-cancer-mnist-ham10000" in str(err.value)
    assert (folder / "HAM10000_metadata.csv").is_file()  # not ours to delete


def test_on_kaggle_without_the_dataset_it_says_what_to_attach(
    tmp_path, monkeypatch, http_server, capsys
):
    (tmp_path / "kaggle_input" / "some-other-dataset").mkdir(parents=True)
    monkeypatch.setenv("COURSE_KAGGLE_INPUT", str(tmp_path / "kaggle_input"))
    monkeypatch.delenv("COURSE_MIRROR", raising=False)
    gone = RemoteFile("ChestXRay2017.zip", (f"{http_server.url}/gone/ChestXRay2017.zip",))
    monkeypatch.setattr(archives, "CHEST_XRAY", gone)
    assert kaggle.chest_xray_input() is None and kaggle.ham10000_input() is None
    data = datasets.load_dataset("xray", source="original", image_size=8, profile=get_profile())
    assert data.source.startswith("generated offline sample")  # smoke: the download failed
    out = capsys.readouterr().out
    assert (
        "On Kaggle: Add Input → Datasets → paultimothymooney/chest-xray-pneumonia to read it in "
        "place instead of downloading it." in out
    )
    assert [path for path, _ in http_server.requests] == ["/gone/ChestXRay2017.zip"]  # as before


def test_attach_hints_name_each_dataset():
    assert kaggle.attach_hint("derma") == (
        "On Kaggle: Add Input → Datasets → kmader/skin-cancer-mnist-ham10000"
    )
    assert kaggle.attach_hint("xray") == (
        "On Kaggle: Add Input → Datasets → paultimothymooney/chest-xray-pneumonia"
    )
    assert set(kaggle.KAGGLE_DATASETS) == set(datasets.NAMES)
    with pytest.raises(ValueError, match="derma, xray"):
        kaggle.attach_hint("retina")


def test_off_kaggle_nothing_is_found_and_nothing_said(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_KAGGLE_INPUT", str(tmp_path / "no_such_folder"))
    assert not kaggle.on_kaggle()
    assert kaggle.ham10000_input() is None and kaggle.chest_xray_input() is None
    kaggle.announce("xray", None)
    assert capsys.readouterr().out == ""


def test_the_input_folder_is_read_when_asked_not_at_import(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_KAGGLE_INPUT", raising=False)
    assert kaggle.kaggle_input() == Path("/kaggle/input")
    monkeypatch.setenv("COURSE_KAGGLE_INPUT", str(tmp_path))
    assert kaggle.kaggle_input() == tmp_path


def test_a_mirror_without_a_pack_is_asked_for_its_manifest_only(attached, http_server, monkeypatch):
    monkeypatch.setenv("COURSE_MIRROR", http_server.url)
    data = datasets.load_dataset("xray", source="original", image_size=16, profile=get_profile())
    assert len(data) == len(XRAYS)
    assert [path for path, _ in http_server.requests] == ["/manifest.json"]  # a pack would win
    http_server.requests.clear()  # for the fixture's check that nothing else was asked


def test_a_truly_read_only_input_folder_is_enough(read_only, tmp_path, monkeypatch):
    """/kaggle/input as Kaggle mounts it: a read-only file system (skipped where none can be)."""
    ham10000_copy(read_only.folder / "skin-cancer-mnist-ham10000")
    chest_xray_copy(read_only.folder / "chest-xray-pneumonia")
    monkeypatch.setenv("COURSE_KAGGLE_INPUT", str(read_only.folder))
    monkeypatch.delenv("COURSE_MIRROR", raising=False)
    code = """
        from course_utils import archives, datasets
        from course_utils.config import get_profile
        archives.HAM10000_DATAVERSE = archives.HAM10000_ISIC = ()  # no download could happen
        archives.CHEST_XRAY = None
        for name in ("derma", "xray"):
            data = datasets.load_dataset(name, "original", 16, profile=get_profile("laptop"))
            print(name, len(data), archives.prepared_path(name, 16).is_file())
    """
    done = read_only.run(code, data=tmp_path / "working")
    assert done.returncode == 0, done.stderr
    assert f"derma {len(HAM)} True" in done.stdout and f"xray {len(XRAYS)} True" in done.stdout
    assert done.stdout.count("Using the attached Kaggle dataset") == 2
