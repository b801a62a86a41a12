import numpy as np
import pytest

from course_utils.splits import check_leakage, grouped_split, image_hashes, random_split

RNG = np.random.default_rng(0)
# 600 images of 400 "lesions"; a lesion's images share its class, as in HAM10000.
GROUPS = np.sort(RNG.integers(0, 400, 600))
LABELS = (GROUPS % 7 == 0).astype(int) + (GROUPS % 5 == 0)  # three classes, imbalanced


@pytest.mark.parametrize(
    ("scheme", "shares"), [("60/20/20", [0.6, 0.2, 0.2]), ("80/20", [0.8, 0.2])]
)
def test_grouped_split_sizes_strata_and_no_shared_groups(scheme, shares):
    splits = grouped_split(LABELS, GROUPS, scheme, seed=1)
    every = np.concatenate(list(splits.values()))
    assert sorted(every) == list(range(600))  # each image exactly once
    np.testing.assert_allclose([len(i) / 600 for i in splits.values()], shares, atol=0.04)
    for index in splits.values():  # class shares close to the whole set's
        np.testing.assert_allclose(
            np.bincount(LABELS[index], minlength=3) / len(index),
            np.bincount(LABELS) / 600,
            atol=0.06,
        )
    leakage = check_leakage(splits, GROUPS)
    assert (leakage["shared groups"] == 0).all()


def test_a_split_by_image_leaks_lesions_and_the_check_finds_them():
    splits = random_split(LABELS, "60/20/20", seed=1)
    leakage = check_leakage(splits, GROUPS)
    assert list(leakage.index) == ["train / val", "train / test", "val / test"]
    assert leakage.loc["train / test", "shared groups"] > 10
    assert (
        leakage.loc["train / test", "images in shared groups"]
        > leakage.loc["train / test", "shared groups"]
    )


def test_identical_images_across_splits_are_counted():
    images = RNG.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    images[5] = images[0]  # the same picture twice
    report = check_leakage(
        {"train": np.array([0, 1, 2]), "test": np.array([3, 4, 5])}, images=images
    )
    assert report.loc["train / test", "identical images"] == 1
    hashes = image_hashes(images)
    assert hashes[0] == hashes[5] and len(set(hashes)) == 5


def test_split_arguments_are_checked():
    with pytest.raises(ValueError, match="60/20/20, 80/20"):
        grouped_split(LABELS, GROUPS, "70/30")
    with pytest.raises(ValueError, match="600 labels but 3 groups"):
        grouped_split(LABELS, GROUPS[:3])
