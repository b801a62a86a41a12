"""The real sources, served from 127.0.0.1 in their exact published layouts (tiny images)."""

import hashlib
import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data as skimage_data

from course_utils import archives, datasets, decode, medmnist_plus
from course_utils.config import data_dir, get_profile
from course_utils.data import DERMA_CLASSES
from course_utils.download import DownloadError, RemoteFile

# Ten HAM10000 images of seven lesions (ISIC_0024306 onwards), with their diagnoses.
HAM = pd.DataFrame(
    {
        "lesion_id": [
            "HAM_0000118",
            "HAM_0000118",
            "HAM_0002730",
            "HAM_0002730",
            "HAM_0001466",
            "HAM_0002761",
            "HAM_0005132",
            "HAM_0001396",
            "HAM_0004143",
            "HAM_0004143",
        ],
        "image_id": [f"ISIC_{24306 + i:07d}" for i in range(10)],
        "dx": ["bkl", "bkl", "nv", "nv", "mel", "df", "vasc", "akiec", "bcc", "bcc"],
        "dx_type": ["histo"] * 5 + ["consensus", "follow_up", "histo", "confocal", "histo"],
        "age": [80.0, 80.0, 75.0, 75.0, None, 60.0, 55.0, 70.0, 65.0, 65.0],
        "sex": ["male"] * 5 + ["female"] * 5,
        "localization": ["scalp"] * 4 + ["back", "face", "trunk", "ear", "neck", "neck"],
        "dataset": ["vidir_modern"] * 10,
    }
)


def jpeg(colour, size=(60, 45), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def write_zip(path, entries: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def local(server, name, checksum=True) -> RemoteFile:
    data = (server.root / name).read_bytes()
    md5 = hashlib.md5(data).hexdigest() if checksum else None
    return RemoteFile(name, (f"{server.url}/{name}",), md5=md5, size=len(data))


def ham_colour(dx: str) -> tuple[int, int, int]:
    return (30 * DERMA_CLASSES.index(dx), 100, 200 - 20 * DERMA_CLASSES.index(dx))


@pytest.fixture
def dataverse(http_server, monkeypatch):
    """HAM10000 as Harvard Dataverse publishes it: two zips of top-level JPEGs and a CSV."""
    root, rows = http_server.root, HAM.to_dict("records")
    write_zip(
        root / "HAM10000_images_part_1.zip",
        {f"{r['image_id']}.jpg": jpeg(ham_colour(r["dx"])) for r in rows[:6]},
    )
    write_zip(
        root / "HAM10000_images_part_2.zip",
        {f"{r['image_id']}.jpg": jpeg(ham_colour(r["dx"])) for r in rows[6:]},
    )
    HAM.to_csv(root / "HAM10000_metadata.csv", index=False)
    files = tuple(local(http_server, f.name) for f in archives.HAM10000_DATAVERSE)
    monkeypatch.setattr(archives, "HAM10000_DATAVERSE", files)
    return http_server


@pytest.fixture
def isic(http_server, monkeypatch):
    """HAM10000 as the ISIC 2018 Task 3 training files: one zip, one-hot labels, lesion groups."""
    root, folder = http_server.root, "ISIC2018_Task3_Training_Input"
    entries = {
        f"{folder}/{r['image_id']}.jpg": jpeg(ham_colour(r["dx"])) for r in HAM.to_dict("records")
    }
    entries |= {f"{folder}/ATTRIBUTION.txt": b"ViDIR", f"{folder}/LICENSE.txt": b"CC BY-NC 4.0"}
    write_zip(root / f"{folder}.zip", entries)
    one_hot = pd.DataFrame({"image": HAM["image_id"]})
    for name in ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC"):
        one_hot[name] = (HAM["dx"].str.upper() == name).astype(float)
    truth = "ISIC2018_Task3_Training_GroundTruth"
    write_zip(root / f"{truth}.zip", {f"{truth}/{truth}.csv": one_hot.to_csv(index=False).encode()})
    HAM.rename(columns={"image_id": "image", "dx_type": "diagnosis_confirm_type"})[
        ["image", "lesion_id", "diagnosis_confirm_type"]
    ].to_csv(root / "ISIC2018_Task3_Training_LesionGroupings.csv", index=False)
    files = tuple(local(http_server, f.name, checksum=False) for f in archives.HAM10000_ISIC)
    monkeypatch.setattr(archives, "HAM10000_ISIC", files)
    return http_server


XRAYS = {  # file → (split, class); patients per Kermany et al.'s naming
    "train/NORMAL/IM-0115-0001.jpeg": "normal",
    "train/NORMAL/NORMAL2-IM-0115-0002.jpeg": "normal",  # same patient as IM-0115
    "train/NORMAL/IM-0117-0001.jpeg": "normal",
    "train/PNEUMONIA/person1_bacteria_1.jpeg": "pneumonia",
    "train/PNEUMONIA/person1_virus_6.jpeg": "pneumonia",
    "train/PNEUMONIA/person3_bacteria_10.jpeg": "pneumonia",
    "test/NORMAL/IM-0001-0001.jpeg": "normal",
    "test/PNEUMONIA/person100_bacteria_475.jpeg": "pneumonia",
}


def xray_archive(server, corrupt: str | None = None) -> None:
    entries = {}
    for i, (name, label) in enumerate(XRAYS.items()):
        grey = 60 if label == "normal" else 190
        rgb = i == 3  # a few of the real files are RGB
        data = jpeg((grey,) * 3 if rgb else grey, (80, 70), "RGB" if rgb else "L")
        entries[f"chest_xray/{name}"] = b"\xff\xd8 not a jpeg" if name == corrupt else data
    entries["chest_xray/.DS_Store"] = b"junk"
    entries["__MACOSX/chest_xray/train/NORMAL/._IM-0115-0001.jpeg"] = b"junk"
    write_zip(server.root / "ChestXRay2017.zip", entries)


@pytest.fixture
def kermany(http_server, monkeypatch):
    xray_archive(http_server)
    monkeypatch.setattr(archives, "CHEST_XRAY", local(http_server, "ChestXRay2017.zip"))
    return http_server


def test_ham10000_from_dataverse(dataverse, capsys):
    data = datasets.load_dataset("derma", source="original", image_size=16, profile=get_profile())
    assert data.images.shape == (10, 16, 16, 3) and data.images.dtype == np.uint8
    assert [DERMA_CLASSES[y] for y in data.labels] == list(HAM["dx"])
    assert list(data.groups) == list(HAM["lesion_id"])
    assert list(data.metadata.columns[:7]) == list(datasets.HAM10000_COLUMNS)
    assert data.metadata["age"].isna().sum() == 1
    assert data.metadata[["width", "height"]].drop_duplicates().values.tolist() == [[60, 45]]
    # the decoded colour is the class colour (centre-cropped, resized)
    np.testing.assert_allclose(data.images[4].mean(axis=(0, 1)), ham_colour("mel"), atol=3)
    assert "HAM10000, original archive, 16 px" in capsys.readouterr().out
    served = len(dataverse.requests)
    again = datasets.load_dataset("derma", source="original", image_size=16, profile=get_profile())
    assert len(dataverse.requests) == served  # decoded once: the second call reads the cache
    np.testing.assert_array_equal(again.images, data.images)


def test_ham10000_falls_back_to_the_isic_files(dataverse, isic, monkeypatch):
    gone = tuple(
        RemoteFile(f.name, (f"{isic.url}/gone/{f.name}",)) for f in archives.HAM10000_DATAVERSE
    )
    monkeypatch.setattr(archives, "HAM10000_DATAVERSE", gone)
    data = datasets.load_dataset("derma", source="original", image_size=16, profile=get_profile())
    assert [DERMA_CLASSES[y] for y in data.labels] == list(HAM["dx"])
    assert list(data.groups) == list(HAM["lesion_id"])
    assert list(data.metadata["dx_type"]) == list(HAM["dx_type"])
    assert data.metadata["age"].isna().all()  # ISIC's files carry no age, sex or site


def test_both_ham10000_hosts_failing_gives_both_manual_paths(http_server, monkeypatch):
    for attr in ("HAM10000_DATAVERSE", "HAM10000_ISIC"):
        gone = tuple(
            RemoteFile(f.name, (f"{http_server.url}/gone/{f.name}",))
            for f in getattr(archives, attr)
        )
        monkeypatch.setattr(archives, attr, gone)
    with pytest.raises(DownloadError) as err:
        datasets.load_dataset("derma", source="original", profile=get_profile("laptop"))
    message = str(err.value)
    # Every missing file, with its own steps, in one message; after a source's first failure
    # its other files are listed but not tried (on a bad network each try can take minutes).
    for name in ("HAM10000_images_part_1.zip", "ISIC2018_Task3_Training_Input.zip"):
        assert f"Could not download {name}" in message
    for name in (
        "HAM10000_images_part_2.zip",
        "HAM10000_metadata.csv",
        "ISIC2018_Task3_Training_LesionGroupings.csv",
    ):
        assert f"Could not get {name}:\n  - not tried" in message
    assert [path for path, _ in http_server.requests] == [
        "/gone/HAM10000_images_part_1.zip",
        "/gone/ISIC2018_Task3_Training_Input.zip",
    ]
    assert (
        "Missing 3 of 3 files" in message and message.count("prefetch`) again") == 1
    )  # said once, at the end
    assert "doi.org/10.7910/DVN/DBW86T" in message and "HTTP 404" in message


def test_a_missing_metadata_column_is_named_and_the_file_removed(dataverse, monkeypatch, tmp_path):
    HAM.drop(columns="lesion_id").to_csv(dataverse.root / "HAM10000_metadata.csv", index=False)
    files = tuple(local(dataverse, f.name) for f in archives.HAM10000_DATAVERSE)
    monkeypatch.setattr(archives, "HAM10000_DATAVERSE", files)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['lesion_id'\]"):
        datasets.load_dataset("derma", source="original", image_size=16, profile=get_profile())
    cache = tmp_path / "data"
    assert not (cache / "ham10000" / "HAM10000_metadata.csv").exists()
    assert not (cache / "prepared").exists() or not list((cache / "prepared").iterdir())


def test_chest_xray_groups_patients_and_keeps_the_official_split(kermany):
    data = datasets.load_dataset("xray", source="original", image_size=24, profile=get_profile())
    assert data.images.shape == (8, 24, 24) and data.class_names == ("normal", "pneumonia")
    files = sorted(XRAYS)  # the loader walks the tree in sorted order
    assert list(data.labels) == [int(XRAYS[f] == "pneumonia") for f in files]
    assert list(data.official_split) == [f.split("/")[0] for f in files]
    patients = dict(zip(files, data.groups, strict=True))
    assert (
        patients["train/NORMAL/IM-0115-0001.jpeg"]
        == patients["train/NORMAL/NORMAL2-IM-0115-0002.jpeg"]
    )
    assert (
        patients["train/PNEUMONIA/person1_bacteria_1.jpeg"]
        == patients["train/PNEUMONIA/person1_virus_6.jpeg"]
        == "person1"
    )
    assert len(set(data.groups)) == 6
    assert data.metadata[["width", "height"]].drop_duplicates().values.tolist() == [[80, 70]]
    assert data.metadata["file"][0] == "chest_xray/test/NORMAL/IM-0001-0001.jpeg"
    assert set(data.split("official")) == {"train", "test"}


@pytest.mark.parametrize("on_error", ["stop", "skip"])
def test_a_corrupt_jpeg_is_reported_by_name(http_server, monkeypatch, tmp_path, capsys, on_error):
    bad = "train/PNEUMONIA/person3_bacteria_10.jpeg"
    xray_archive(http_server, corrupt=bad)
    monkeypatch.setattr(archives, "CHEST_XRAY", local(http_server, "ChestXRay2017.zip"))
    if on_error == "stop":
        with pytest.raises(ValueError, match="person3_bacteria_10.jpeg"):
            datasets.load_dataset(
                "xray", source="original", image_size=24, on_error=on_error, profile=get_profile()
            )
        assert (
            not list((tmp_path / "data" / "prepared").glob("*"))
            if (tmp_path / "data" / "prepared").exists()
            else True
        )
    else:
        data = datasets.load_dataset(
            "xray", source="original", image_size=24, on_error=on_error, profile=get_profile()
        )
        assert len(data) == 7 and "person3_bacteria_10.jpeg" in capsys.readouterr().out


def medmnist_npz(server, name: str, size: int, grey: bool) -> RemoteFile:
    rng = np.random.default_rng(0)
    shape = (size, size) if grey else (size, size, 3)
    arrays = {}
    for split, n in (("train", 7), ("val", 2), ("test", 3)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 2, (n, 1), dtype=np.uint8)
    np.savez(server.root / name, **arrays)
    return local(server, name)


def test_medmnist_keeps_the_official_splits_and_resizes(http_server, monkeypatch):
    asked = []

    def fake_file(name, size):
        asked.append(size)
        return medmnist_npz(http_server, f"pneumoniamnist_{size}.npz", size, grey=True)

    monkeypatch.setattr(medmnist_plus, "medmnist_file", fake_file)
    data = datasets.load_dataset(
        "xray", source="medmnist", image_size=32, max_samples=None, profile=get_profile()
    )
    assert asked == [64] and data.images.shape == (12, 32, 32)  # the 64 px file, resized
    assert list(data.official_split) == ["train"] * 7 + ["val"] * 2 + ["test"] * 3
    assert data.source == "PneumoniaMNIST (MedMNIST+, 64 px file, resized to 32 px)"


def test_medmnist_registry_comes_from_the_medmnist_package():
    remote = datasets.medmnist_file("derma", 64)
    assert remote.name == "dermamnist_64.npz" and remote.md5 == "b70a2f5635c6199aeaa28c31d7202e1f"
    assert datasets.medmnist_file("xray", 28).md5 == "28209eda62fecd6e6a2d98b1501bb15f"


def _offline(monkeypatch, http_server):
    gone = lambda name, size: RemoteFile("x.npz", (f"{http_server.url}/gone/x.npz",))  # noqa: E731
    monkeypatch.setattr(medmnist_plus, "medmnist_file", gone)


def test_auto_falls_back_to_the_sample_only_in_smoke(http_server, monkeypatch, capsys):
    _offline(monkeypatch, http_server)
    data = datasets.load_dataset("derma", profile=get_profile())
    out = capsys.readouterr().out
    assert "No real data could be had" in out and "generated offline sample" in out
    assert data.images.shape[1:] == (32, 32, 3) and len(data) <= get_profile("smoke").max_samples
    with pytest.raises(DownloadError, match="Save it as"):
        datasets.load_dataset("derma", profile=get_profile("laptop"))


def test_auto_prefers_prepared_original_data(dataverse, http_server, monkeypatch):
    datasets.load_dataset("derma", source="original", image_size=16, profile=get_profile())
    _offline(monkeypatch, http_server)
    assert "HAM10000" in datasets.load_dataset("derma", image_size=16, profile=get_profile()).source


def test_limit_keeps_whole_groups():
    data = datasets.load_sample("derma", 8, 300)
    small = datasets.limit_samples(data, 100, seed=3)
    assert len(small) <= 100
    for group in set(small.groups):
        assert (small.groups == group).sum() == (data.groups == group).sum()


def test_sample_split_by_image_leaks_like_dermamnist():
    data = datasets.load_sample("derma", 8, 400)
    from course_utils.splits import check_leakage

    official = {s: np.flatnonzero(data.official_split == s) for s in ("train", "val", "test")}
    assert check_leakage(official, data.groups)["shared groups"].sum() > 0
    grouped = data.split("60/20/20")
    assert set(grouped) == {"train", "val", "test"}
    shared = set(grouped["train"].groups) & set(grouped["test"].groups)
    assert not shared


def test_bad_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="derma, xray"):
        datasets.load_dataset("retina", profile=get_profile())
    with pytest.raises(ValueError, match="auto, original, medmnist, dermamnist_c, sample"):
        datasets.load_dataset("derma", source="kaggle", profile=get_profile())
    with pytest.raises(ValueError, match="no official split"):
        datasets.ImageSet(
            np.zeros((2, 4, 4), np.uint8), np.zeros(2), ("a", "b"), np.zeros(2), "x"
        ).split("official")


def test_original_falls_back_to_the_sample_in_smoke_only(http_server, monkeypatch, capsys):
    gone = RemoteFile("ChestXRay2017.zip", (f"{http_server.url}/gone/ChestXRay2017.zip",))
    monkeypatch.setattr(archives, "CHEST_XRAY", gone)
    data = datasets.load_dataset("xray", source="original", profile=get_profile())
    assert data.source.startswith("generated offline sample") and data.images.ndim == 3
    assert "No real data could be had (http://127.0.0.1" in capsys.readouterr().out
    with pytest.raises(DownloadError, match="Could not download ChestXRay2017.zip"):
        datasets.load_dataset("xray", source="original", profile=get_profile("full"))
    for attr in ("HAM10000_DATAVERSE", "HAM10000_ISIC"):  # several files: the first reason shows
        gone = tuple(RemoteFile(f.name, (f"{http_server.url}/gone/{f.name}",))
                     for f in getattr(archives, attr))  # fmt: skip
        monkeypatch.setattr(archives, attr, gone)
    datasets.load_dataset("derma", source="original", profile=get_profile())
    assert "HAM10000_images_part_1.zip: HTTP 404" in capsys.readouterr().out


def test_fast_decoding_matches_a_plain_crop_and_resize(tmp_path):
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (9, 12, 3)), np.ones((50, 50, 1))).astype(np.uint8)
    path = tmp_path / "lesion.jpg"
    Image.fromarray(smooth).save(path, quality=95)  # 600×450, like HAM10000
    fast, width, height = datasets.decode_image(str(path), 64, grey=False)
    with Image.open(path) as image:
        plain = np.asarray(
            image.convert("RGB").crop((75, 0, 525, 450)).resize((64, 64), Image.BILINEAR)
        )
    assert (width, height) == (600, 450) and fast.shape == (64, 64, 3)
    assert np.abs(fast.astype(int) - plain).mean() < 4  # same picture, up to resampling detail


def photo(width: int, height: int, mode: str) -> Image.Image:
    """A smooth real picture (astronaut or camera, blurred to 32 px) stretched to width×height."""
    picture = skimage_data.astronaut() if mode == "RGB" else skimage_data.camera()
    small = Image.fromarray(picture).resize((32, 32), Image.Resampling.LANCZOS)
    return small.resize((width, height), Image.Resampling.BICUBIC)


def plain_decode(image: Image.Image, size: int) -> np.ndarray:
    """The reference: full-resolution centre square, resized BILINEAR (no draft())."""
    side = min(image.size)
    left, top = (image.width - side) / 2, (image.height - side) / 2
    box = (left, top, left + side, top + side)
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR, box=box))


# Mean absolute difference to the plain decode, in grey levels. libjpeg's 1/2..1/8 decode is a
# sharper low-pass than BILINEAR's; over every pair of sides in {37, 64, 100, 401, 450, 600, 1000,
# 1300, 1317, 1857, 2048, 2916} × RGB/L × sizes {28, 32, 64, 128, 224} the largest was 5.6 (64×64
# RGB at 32 px, where the 1/2 decode is already 32 px); at 64 px and above it stays under 1.
# Mapping the crop by decoded size/original size (not draft()'s 1/k) gave 9.1 at 401×401 → 28.
DECODE_TOLERANCE = 6
DECODE_SHAPES = [  # (width, height, mode): square, landscape, portrait, tiny, extreme, huge
    (37, 37, "L"),
    (64, 64, "RGB"),
    (64, 100, "RGB"),
    (100, 64, "L"),
    (401, 401, "RGB"),
    (450, 401, "L"),
    (401, 600, "RGB"),
    (600, 450, "RGB"),  # HAM10000
    (1000, 1300, "L"),
    (1300, 1000, "L"),
    (1317, 1857, "L"),
    (1857, 1317, "RGB"),
    (2048, 2048, "L"),
    (2916, 2048, "L"),
    (1317, 2916, "RGB"),
    (2916, 37, "L"),
    (37, 2916, "RGB"),
]


@pytest.mark.parametrize(("width", "height", "mode"), DECODE_SHAPES)
def test_decoding_any_shape_matches_a_plain_crop_and_resize(tmp_path, width, height, mode):
    path = tmp_path / "image.jpg"
    photo(width, height, mode).save(path, quality=90)
    with Image.open(path) as image:
        original = image.convert(mode)
    for size in (28, 32, 64, 128, 224):
        fast, w, h = datasets.decode_image(str(path), size, grey=mode == "L")
        assert (w, h) == (width, height) and fast.dtype == np.uint8
        assert fast.shape == ((size, size) if mode == "L" else (size, size, 3))
        difference = np.abs(fast.astype(int) - plain_decode(original, size)).mean()
        assert difference < DECODE_TOLERANCE, (width, height, mode, size, difference)


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize(("width", "height"), [(1300, 1000), (1857, 1317)])
def test_chest_xray_sizes_decode_without_a_box_error(tmp_path, width, height, size):
    # draft() rounds each side up on its own (1300×1000 → 163×125 at 1/8): one scale for both
    # axes put the crop box outside the decoded image ("box offset can't be negative").
    path = tmp_path / "xray.jpeg"
    photo(width, height, "L").save(path)
    fast, w, h = datasets.decode_image(str(path), size, grey=True)
    with Image.open(path) as image:
        plain = plain_decode(image.convert("L"), size)
    assert (w, h) == (width, height) and fast.shape == (size, size)
    assert np.abs(fast.astype(int) - plain).mean() < DECODE_TOLERANCE


def test_a_truncated_jpeg_stops_with_advice_to_download_again(tmp_path):
    whole = jpeg(128, (300, 200), "L")
    path = tmp_path / "truncated.jpeg"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError) as raised:
        datasets.decode_images([str(path)], 32, grey=True, on_error="stop")
    message = str(raised.value)
    assert "truncated.jpeg: OSError" in message
    assert "damaged" in message and "download it again" in message and "bug" not in message


def test_a_decoding_bug_is_not_blamed_on_the_download(tmp_path, monkeypatch):
    path = tmp_path / "fine.jpeg"
    path.write_bytes(jpeg(128, (300, 200), "L"))

    def broken(path, size, grey):
        return 1 / 0

    monkeypatch.setattr(decode, "decode_image", broken)
    with pytest.raises(ValueError) as raised:
        datasets.decode_images([str(path)], 32, grey=True, on_error="stop")
    message = str(raised.value)
    assert "fine.jpeg: ZeroDivisionError" in message and "bug in course_utils" in message
    assert "report" in message and "download it again" not in message
    assert "damaged:" not in message and "re-download" not in message


def test_resized_keeps_labels_and_says_so():
    data = datasets.load_sample("xray", 32, 60)
    small = data.resized(16)
    assert small.images.shape == (60, 16, 16) and (small.labels == data.labels).all()
    assert small.source.endswith("resized to 16 px") and data.resized(32) is data


def test_prefetch_prepares_data_and_weights_for_a_room_without_network(
    dataverse, kermany, monkeypatch, tmp_path, capsys
):
    """Both datasets and one architecture's weights, over HTTP; then everything works offline."""
    import torch
    import torchvision

    from course_utils import models, prefetch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    staged = tmp_path / "weights.pth"
    torch.save(torchvision.models.squeezenet1_1().state_dict(), staged)
    digest = hashlib.sha256(staged.read_bytes()).hexdigest()[:8]
    served = kermany.root / f"squeezenet1_1-{digest}.pth"  # torch.hub checks this hash prefix
    staged.rename(served)
    monkeypatch.setitem(models.WEIGHT_URLS, "squeezenet1_1", f"{kermany.url}/{served.name}")
    staged_copy = models.weights_path("squeezenet1_1")  # where the hub cache will keep it

    assert prefetch.main(["--sizes", "32", "--archs", "squeezenet1_1"]) == 0
    out = capsys.readouterr().out
    assert "derma at 32 px" in out and "xray at 32 px" in out and "FAILED" not in out
    assert models.available_weights()["squeezenet1_1"]

    # The network goes away: a non-smoke profile still finds everything on disk.
    kermany.root.joinpath(served.name).unlink()
    monkeypatch.setattr(archives, "HAM10000_DATAVERSE", ())
    monkeypatch.setattr(archives, "CHEST_XRAY", None)
    data = datasets.load_dataset("xray", source="original", profile=get_profile("laptop"),
                                 image_size=32)  # fmt: skip
    assert len(data) == len(XRAYS)
    model = models.build_model("squeezenet1_1", 2, profile=get_profile("laptop"), image_size=64)
    torch.testing.assert_close(model.stem[0].weight, torch.load(staged_copy)["features.0.weight"])


def test_prefetch_reports_what_failed_with_the_manual_steps(http_server, monkeypatch, capsys):
    from course_utils import prefetch

    gone = RemoteFile("ChestXRay2017.zip", (f"{http_server.url}/gone/ChestXRay2017.zip",))
    monkeypatch.setattr(archives, "CHEST_XRAY", gone)
    monkeypatch.setattr("course_utils.models.WEIGHT_URLS", {"resnet18": f"{http_server.url}/r.pth"})
    args = ["--sizes", "32", "64", "--datasets", "xray", "--archs", "resnet18"]
    assert prefetch.main(args) == 1
    out = capsys.readouterr().out
    assert out.count("FAILED") == 2 and "skipped" in out  # 64 px is not downloaded twice
    assert [path for path, _ in http_server.requests].count("/gone/ChestXRay2017.zip") == 1
    assert "ChestXRay2017.zip" in out and "r.pth (exactly this name and folder)" in out
    assert not list(data_dir().rglob("*.npz"))  # nothing half-prepared


def test_prefetch_reports_any_failure_and_goes_on(monkeypatch, capsys):
    from course_utils import prefetch

    def prepare(name, size):
        if name == "derma":
            raise ValueError("HAM10000_metadata.csv lacks the column lesion_id")
        return datasets.load_sample(name, size, 40)

    monkeypatch.setattr(prefetch, "prepare_original", prepare)
    report = prefetch.prefetch([32], archs=("efficientnet_lite0",))
    assert list(report["status"]) == ["ready", "FAILED", "ready"]
    assert report.loc["derma at 32 px", "details"].startswith("ValueError: HAM10000_metadata")


def test_sources_come_from_the_catalog_and_the_registry_lives_in_archives():
    from course_utils.catalog import DATASETS

    assert list(zip(datasets.SOURCES["name"], datasets.SOURCES["source"], strict=True)) == [
        ("derma", "original"),
        ("derma", "medmnist"),
        ("derma", "dermamnist_c"),  # the corrected DermaMNIST, split by lesion (HAM10000 only)
        ("xray", "original"),
        ("xray", "medmnist"),
    ]
    assert set(datasets.SOURCES["source"]) | {"auto", "sample"} == set(datasets.SOURCE_KINDS)
    assert tuple(dict.fromkeys(datasets.SOURCES["name"])) == tuple(DATASETS)
    row = datasets.SOURCES.set_index(["name", "source"]).loc[("xray", "medmnist")]
    assert row["files"] == "PneumoniaMNIST (MedMNIST+, Zenodo 10519652)"
    assert row["licence"] == "CC BY 4.0" and row["cite"] == "Yang et al., Sci. Data 10:41 (2023)"
    assert datasets.NAMES == ("derma", "xray")
    # The registry is patched where the readers look it up; datasets has no stale copy to patch.
    for name in ("HAM10000_DATAVERSE", "HAM10000_ISIC", "CHEST_XRAY"):
        assert hasattr(archives, name) and not hasattr(datasets, name)
    mirrors = [f.mirror_path for f in (*archives.HAM10000_DATAVERSE, archives.CHEST_XRAY)]
    assert mirrors[0] == "ham10000/HAM10000_images_part_1.zip"
    assert mirrors[-1] == "chest_xray/ChestXRay2017.zip"


def test_a_sample_of_all_images_has_a_fixed_size():
    data = datasets.load_dataset(
        "xray", source="sample", image_size=8, max_samples=None, profile=get_profile()
    )
    assert len(data) == datasets.SAMPLE_IMAGES_FOR_ALL == 2000
