"""DermaMNIST-C, the corrected DermaMNIST, served from 127.0.0.1 in its published layout.

The npz holds the six MedMNIST arrays (uint8 N×H×W×3 images, N×1 labels per split); the lesion
ids come from the authors' metadata CSV, whose rows of each split are the npz's rows in order.
"""

import hashlib
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from course_utils import datasets, medmnist_plus
from course_utils.catalog import DERMA_CLASSES, SPLITS
from course_utils.config import data_dir, get_profile
from course_utils.download import DownloadError, RemoteFile
from course_utils.splits import check_leakage

CSV_NAME = "combined_metadata_corrected-HAM10000_corrected.csv"
COLUMNS = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization", "dataset"]
PAIR = medmnist_plus.NEAR_DUPLICATES[0]
REAL_NPZ, REAL_CSV = (
    medmnist_plus.DERMAMNIST_C_NPZ,
    medmnist_plus.DERMAMNIST_C_METADATA,
)  # two lesion ids, one lesion (the authors found)


def metadata_table() -> pd.DataFrame:
    """84 images of 42 lesions, 6 per class, one to three images each, the lesions kept whole in
    one split; rows in no particular order (the real CSV interleaves its splits)."""
    rows, image = [], 24306
    for c, dx in enumerate(DERMA_CLASSES):
        for k, count in enumerate((1, 2, 3, 1, 2, 3)):
            split = ("train", "train", "train", "val", "test", "test")[k]
            for _ in range(count):
                rows.append((f"HAM_{100 * c + k:07d}", f"ISIC_{image:07d}", dx, split))
                image += 1
    table = pd.DataFrame(rows, columns=["lesion_id", "image_id", "dx", "split"])
    # two images of one bkl lesion seen twice under two lesion ids, both in train
    first, second = table.index[(table["dx"] == "bkl") & (table["split"] == "train")][[0, 1]]
    table.loc[[first, second], "image_id"] = PAIR
    table = table.assign(
        dx_type="histo", age=55.0, sex="female", localization="back", dataset="vidir_modern"
    )
    order = np.random.default_rng(0).permutation(len(table))
    return table.iloc[order][[*COLUMNS, "split"]].reset_index(drop=True)


def colour(row: int) -> tuple[int, int, int]:
    """Each image a flat colour that names its row of the CSV (to check the order)."""
    return (row % 256, row // 256, 7)


def write_npz(path, table: pd.DataFrame, size: int, drop: str | None = None) -> None:
    """The MedMNIST layout, in CSV order within each split, as the authors' notebook builds it."""
    arrays = {}
    for split in SPLITS:
        rows = table.index[table["split"] == split]
        images = np.stack([np.full((size, size, 3), colour(r), np.uint8) for r in rows])
        labels = table.loc[rows, "dx"].map(DERMA_CLASSES.index).to_numpy(np.uint8)
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels.reshape(-1, 1)
    arrays.pop(drop, None)
    np.savez_compressed(path, **arrays)


def md5_of(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def corrected(http_server, monkeypatch):
    """Both DermaMNIST-C npz files and the metadata CSV, served; the registry points at them."""
    table = metadata_table()
    table.to_csv(http_server.root / CSV_NAME, index=False)
    files = {}
    for size in (28, 224):
        name = f"dermamnist_corrected_{size}.npz"
        write_npz(http_server.root / name, table, size)
        files[size] = RemoteFile(
            name, (f"{http_server.url}/{name}",), md5=md5_of(http_server.root / name)
        )
    monkeypatch.setattr(medmnist_plus, "DERMAMNIST_C_NPZ", files)
    csv = RemoteFile(
        CSV_NAME, (f"{http_server.url}/{CSV_NAME}",), columns=medmnist_plus.DERMAMNIST_C_COLUMNS
    )
    monkeypatch.setattr(medmnist_plus, "DERMAMNIST_C_METADATA", csv)
    http_server.table = table
    return http_server


def load(size=16, profile="smoke"):
    return datasets.load_dataset(
        "derma", source="dermamnist_c", image_size=size, max_samples=None,
        profile=get_profile(profile),
    )  # fmt: skip


def test_official_splits_lesions_and_labels_follow_the_metadata(corrected, capsys):
    data = load(16)
    table = corrected.table
    in_npz_order = pd.concat([table[table["split"] == s] for s in SPLITS])
    assert data.images.shape == (84, 16, 16, 3) and data.images.dtype == np.uint8
    assert data.class_names == DERMA_CLASSES
    assert list(data.official_split) == list(in_npz_order["split"])
    assert [DERMA_CLASSES[y] for y in data.labels] == list(in_npz_order["dx"])
    assert list(data.metadata["image_id"]) == list(in_npz_order["image_id"])
    # each image is the one its metadata row describes (flat colours survive the resize)
    np.testing.assert_array_equal(data.images[:, 0, 0], [colour(r) for r in in_npz_order.index])
    lesion = dict(zip(table["image_id"], table["lesion_id"], strict=True))
    one, other = lesion[PAIR[0]], lesion[PAIR[1]]
    assert one != other  # two lesion ids in the metadata, one lesion: the whole of both merge
    expected = in_npz_order["lesion_id"].replace(other, one).to_numpy(str)
    np.testing.assert_array_equal(data.groups, expected)
    assert len(set(data.groups)) == 41
    assert data.source == "DermaMNIST-C (corrected DermaMNIST, 28 px file, resized to 16 px)"
    assert "Using DermaMNIST-C" in capsys.readouterr().out


@pytest.mark.parametrize("scheme", ["official", "60/20/20", "80/20"])
def test_every_split_keeps_each_lesion_on_one_side_and_does_not_warn(corrected, scheme):
    data = load(16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the MedMNIST+ leakage warning would fail the test
        parts = data.split(scheme, seed=0)
    assert set(parts) == ({"train", "test"} if scheme == "80/20" else set(SPLITS))
    assert sum(len(p) for p in parts.values()) == len(data)
    names = list(parts)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert not set(parts[first].groups) & set(parts[second].groups), (first, second)
    index = {s: np.flatnonzero(data.official_split == s) for s in SPLITS}
    assert check_leakage(index, data.groups)["shared groups"].sum() == 0


def test_sizes_above_28_come_from_the_224_file(corrected):
    data = load(32)
    assert [path for path, _ in corrected.requests] == [
        f"/{CSV_NAME}",
        "/dermamnist_corrected_224.npz",
    ]
    assert data.images.shape == (84, 32, 32, 3)
    assert data.source.endswith(", 224 px file, resized to 32 px)")
    requests = len(corrected.requests)
    again = load(28)  # the 28 px file; the CSV is not fetched again
    assert again.source.endswith(", 28 px file)") and again.images.shape[1] == 28
    assert [path for path, _ in corrected.requests[requests:]] == ["/dermamnist_corrected_28.npz"]


def _left_in(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


def test_a_truncated_npz_is_refused_and_nothing_half_written_stays(corrected, capsys):
    npz = corrected.root / "dermamnist_corrected_28.npz"
    npz.write_bytes(npz.read_bytes()[:-200])  # the host sends a cut file (the md5 is the whole's)
    with pytest.raises(DownloadError) as caught:
        load(16, profile="laptop")
    message = str(caught.value)
    assert "downloaded file failed verification: md5" in message
    assert "Save it as" in message and "dermamnist_corrected_28.npz" in message
    assert "zenodo.org/records/12739457" in message  # where to get it by hand
    folder = data_dir() / "medmnist"
    assert _left_in(folder) == [f".{CSV_NAME}.verified", CSV_NAME]  # the CSV is whole: kept
    data = load(16)  # smoke: the generated sample stands in, and says so
    assert data.source.startswith("generated offline sample")
    assert "No real data could be had" in capsys.readouterr().out


def test_a_truncated_csv_is_refused_before_the_large_file_is_asked_for(corrected):
    csv = corrected.root / CSV_NAME
    csv.write_bytes(csv.read_bytes()[:-20])  # cut in the middle of its last line
    with pytest.raises(DownloadError) as caught:
        load(16, profile="laptop")
    message = str(caught.value)
    assert "ends in the middle of a line" in message
    assert f"Could not download {CSV_NAME}" in message
    assert "Could not get dermamnist_corrected_28.npz" in message  # its manual steps too
    assert "not tried: an earlier file of DermaMNIST-C failed" in message
    assert not any("npz" in path for path, _ in corrected.requests)
    assert _left_in(data_dir() / "medmnist") == []


def test_a_web_page_instead_of_the_npz_is_refused(corrected):
    corrected.html_instead.add("dermamnist_corrected_28.npz")
    with pytest.raises(DownloadError, match="sent a web page"):
        load(16, profile="laptop")
    assert "dermamnist_corrected_28.npz" not in _left_in(data_dir() / "medmnist")


def test_a_csv_that_does_not_describe_the_npz_is_deleted(corrected):
    table = corrected.table.copy()
    row = table.index[table["split"] == "test"][0]
    table.loc[row, "dx"] = "nv" if table.loc[row, "dx"] != "nv" else "mel"
    table.to_csv(corrected.root / CSV_NAME, index=False)
    with pytest.raises(ValueError, match="diagnoses .dx. differ from the npz's labels"):
        load(16)
    folder = data_dir() / "medmnist"
    assert not (folder / CSV_NAME).exists() and (folder / "dermamnist_corrected_28.npz").exists()
    corrected.table[corrected.table["split"] != "val"].to_csv(
        corrected.root / CSV_NAME, index=False
    )
    with pytest.raises(ValueError, match="its splits hold"):
        load(16)


def test_an_npz_without_one_of_its_arrays_is_deleted(corrected, monkeypatch):
    name = "dermamnist_corrected_28.npz"
    write_npz(corrected.root / name, corrected.table, 28, drop="test_labels")
    remote = RemoteFile(name, (f"{corrected.url}/{name}",), md5=md5_of(corrected.root / name))
    monkeypatch.setitem(medmnist_plus.DERMAMNIST_C_NPZ, 28, remote)
    with pytest.raises(ValueError, match=r"lacks \['test_labels'\]; it was deleted"):
        load(16)
    assert not (data_dir() / "medmnist" / name).exists()


def test_a_room_mirror_serves_it_in_the_data_folder_layout(corrected, monkeypatch):
    """$COURSE_MIRROR/medmnist/<name>, as `python -m course_utils.mirror data/` serves it."""
    (corrected.root / "medmnist").mkdir()
    csv, npz = medmnist_plus.DERMAMNIST_C_METADATA, medmnist_plus.DERMAMNIST_C_NPZ[28]
    for remote in (csv, npz):
        (corrected.root / remote.name).rename(corrected.root / "medmnist" / remote.name)
    gone = {"urls": (f"{corrected.url}/gone",)}  # the published host does not answer
    monkeypatch.setattr(
        medmnist_plus, "DERMAMNIST_C_METADATA",
        replace(csv, **gone, mirror_path=REAL_CSV.mirror_path),
    )  # fmt: skip
    monkeypatch.setitem(
        medmnist_plus.DERMAMNIST_C_NPZ, 28,
        replace(npz, **gone, mirror_path=REAL_NPZ[28].mirror_path),
    )  # fmt: skip
    monkeypatch.setenv("COURSE_MIRROR", corrected.url)
    assert len(load(16)) == 84
    assert {path for path, _ in corrected.requests} == {
        f"/medmnist/{CSV_NAME}",
        "/medmnist/dermamnist_corrected_28.npz",
    }


def test_it_is_offered_for_derma_only():
    with pytest.raises(ValueError, match="exists for 'derma' only"):
        datasets.load_dataset("xray", source="dermamnist_c", profile=get_profile())


def test_the_registry_holds_the_published_files():
    npz = REAL_NPZ
    assert sorted(npz) == [28, 224]
    assert npz[224].name == "dermamnist_corrected_224.npz"
    assert npz[224].md5 == "84920fb70c83b234c295b6f0d4ae2bc0"
    assert npz[28].md5 == "96e2862980877d45d9cacb5c25de6950"
    assert npz[28].urls == (
        "https://zenodo.org/records/12739457/files/dermamnist_corrected_28.npz?download=1",
    )
    assert {f.mirror_path for f in npz.values()} == {
        "medmnist/dermamnist_corrected_28.npz",
        "medmnist/dermamnist_corrected_224.npz",
    }
    csv = REAL_CSV
    assert csv.name == CSV_NAME and csv.md5 is None and csv.sha256 is None  # none is published
    assert set(medmnist_plus.DERMAMNIST_C_COLUMNS) <= {*COLUMNS, "split"}
    assert csv.urls[0].startswith(
        "https://raw.githubusercontent.com/kakumarabhishek/Corrected-Skin-Image-Datasets/"
        "426d79eba22f6b0d3bbf7e747f7d56dc647ced87/"
    )
    assert csv.mirror_path == f"medmnist/{CSV_NAME}"
    pairs = medmnist_plus.NEAR_DUPLICATES
    assert len(pairs) == 18 and len({i for pair in pairs for i in pair}) == 36
    row = datasets.SOURCES.set_index(["name", "source"]).loc[("derma", "dermamnist_c")]
    assert row["licence"] == "CC BY-NC 4.0" and row["cite"].startswith("Abhishek, Jain & Hamarneh")


def test_its_split_sizes_add_up_to_ham10000():
    from course_utils.catalog import DERMA, DERMAMNIST_C_SPLITS

    assert list(DERMAMNIST_C_SPLITS) == list(SPLITS)
    assert sum(DERMAMNIST_C_SPLITS.values()) == sum(DERMA.counts) == 10_015
