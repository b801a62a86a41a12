from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import experiments, results
from course_utils.config import get_profile
from course_utils.data import make_loader
from course_utils.datasets import load_sample
from course_utils.train import History

SMOKE = get_profile("smoke")
DATA = load_sample("derma", 16, 160)
SPLITS = DATA.split("60/20/20")


def small_cnn(classes: int = 7) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            block1=nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4)),
            head=nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, classes)),
        )
    )


def loaders() -> dict:
    return {
        name: make_loader(
            part.images,
            part.labels,
            batch_size=16,
            mean=(0.5,) * 3,
            std=(0.5,) * 3,
            shuffle=name == "train",
        )
        for name, part in SPLITS.items()
    }


def test_a_run_is_kept_and_reused_instead_of_training_again(capsys):
    first = results.train_or_load(
        "toy",
        small_cnn(),
        loaders(),
        source=DATA.source,
        epochs=2,
        progress=False,
        info={"arch": "toy"},
        profile=get_profile(),
    )
    assert not first.reused and len(first.history.epochs) == 2
    assert first.probs.shape == (len(SPLITS["test"]), 7)
    model = small_cnn()
    with torch.no_grad():
        model.block1[0].weight.zero_()
    again = results.train_or_load(
        "toy",
        model,
        loaders(),
        source=DATA.source,
        epochs=2,
        progress=False,
        info={"arch": "toy"},
        profile=get_profile(),
    )
    assert again.reused and "reusing the run kept on" in capsys.readouterr().out
    np.testing.assert_allclose(again.probs, first.probs)
    assert again.history.to_frame().equals(first.history.to_frame())
    assert model.block1[0].weight.abs().sum() > 0  # the kept weights were loaded
    assert list(again.table(DATA.class_names).index)[-2:] == ["micro avg", "macro avg"]
    assert again.info["source"] == DATA.source and again.info["profile"] == "smoke"


@pytest.mark.parametrize("change", ["rerun", "recipe", "source", "layout"])
def test_a_changed_recipe_or_source_or_layout_or_rerun_trains_again(change):
    results.train_or_load(
        "toy", small_cnn(), loaders(), source="A", epochs=1, progress=False, profile=get_profile()
    )
    kwargs = {"source": "A", "epochs": 1, "progress": False}
    model = small_cnn()
    if change == "layout":  # e.g. a course_utils update that regroups an architecture's blocks
        model.register_buffer("extra", torch.zeros(1))
    elif change == "rerun":
        kwargs["rerun"] = True
    elif change == "recipe":
        kwargs["lr"] = 0.1
    else:
        kwargs["source"] = "B"
    assert not results.train_or_load(
        "toy", model, loaders(), **kwargs, profile=get_profile()
    ).reused


def test_runs_are_written_whole_per_profile(tmp_path):
    results.compute_or_load(
        "tree",
        lambda: (np.eye(3)[[0, 1, 2]], np.array([0, 1, 1])),
        source="A",
        profile=get_profile(),
    )
    folder = tmp_path / "results" / "smoke" / "tree"
    assert sorted(p.name for p in folder.iterdir()) == ["info.json", "predictions.npz"]
    assert not list(folder.parent.glob("*.partial"))
    kept = results.compute_or_load(
        "tree", lambda: 1 / 0, source="A", profile=get_profile()
    )  # not computed again
    assert kept.reused and kept.table(["a", "b", "c"]).loc["micro avg", "tree"] == pytest.approx(
        0.67
    )
    assert results.load_run("tree", "A", get_profile("laptop")) is None  # profiles keep their own


def test_weights_transfer_without_the_head():
    results.train_or_load(
        "source",
        small_cnn(7),
        loaders(),
        source="A",
        epochs=1,
        progress=False,
        profile=get_profile(),
    )
    target = small_cnn(2)
    results.load_weights(target, "source", skip_head=True, profile=get_profile())
    kept = torch.load(results.results_dir() / "smoke" / "source" / "weights.pt")
    torch.testing.assert_close(target.block1[0].weight, kept["block1.0.weight"])
    with pytest.raises(FileNotFoundError, match="Run the notebook that trains it first"):
        results.load_weights(target, "missing", profile=get_profile())


def test_vgg16_run_freezes_as_the_strategy_says():
    data = load_sample("derma", 32, 90)
    splits = data.split("60/20/20")
    run = experiments.vgg16_run(
        "vgg", splits, trainable=experiments.STRATEGIES["last block"], weights=None, profile=SMOKE
    )
    assert run.info["recipe"]["trainable"] == ["block5"] and run.probs.shape[1] == 7
    assert experiments.vgg16_run(
        "vgg", splits, trainable=("block5",), weights=None, profile=SMOKE
    ).reused


def test_the_seed_tables_carry_the_published_numbers():
    assert experiments.SEED_HAM10000.loc["macro avg", "all layers"] == 0.60
    assert experiments.SEED_HAM10000.loc["macro avg", "first block"] == 0.11
    assert experiments.SEED_XRAY.loc["macro avg"].tolist() == [0.83, 0.92, 0.92, 0.94, 0.93]
    assert set(experiments.STRATEGIES["all layers"]) == {f"block{i}" for i in range(1, 6)}


def test_a_run_with_its_own_seed_and_budget_repeats_and_is_kept_apart():
    data = load_sample("derma", 32, 90)
    splits = data.split("60/20/20")
    torch.manual_seed(123)  # what ran before must not matter: the run seeds itself
    _, first = experiments.arch_run(
        "lite", "efficientnet_lite0", splits, weights=None, epochs=2, seed=1, profile=SMOKE
    )
    torch.manual_seed(456)
    _, again = experiments.arch_run(
        "lite_again", "efficientnet_lite0", splits, weights=None, epochs=2, seed=1, profile=SMOKE
    )
    np.testing.assert_allclose(first.probs, again.probs, atol=1e-5)
    assert first.info["recipe"]["seed"] == 1 and first.info["recipe"]["epochs"] == "2"
    assert first.info["recipe"]["patience"] == str(SMOKE.patience)  # patience ∝ epochs
    _, other = experiments.arch_run(
        "lite", "efficientnet_lite0", splits, weights=None, epochs=2, seed=2, profile=SMOKE
    )
    assert not other.reused and not np.allclose(first.probs, other.probs)


def run_of(labels: np.ndarray, predicted: np.ndarray, val_f1: float, recipe: dict) -> results.Run:
    probs = np.eye(3)[predicted]
    history = History("val_loss", [{"epoch": 1, "val_macro_f1": val_f1}], 1)
    return results.Run("r", probs, labels, {"recipe": recipe}, history)


def test_compare_puts_validation_beside_test_intervals_and_seeds_as_mean_and_sd():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    guesses = [
        np.where(rng.random(300) < p, labels, rng.integers(0, 3, 300)) for p in (0.5, 0.6, 0.7)
    ]
    one = run_of(labels, guesses[0], 0.4, {"weights": "imagenet", "lr": "0.0001", "epochs": "4"})
    seeds = [run_of(labels, g, v, {}) for g, v in zip(guesses, (0.5, 0.6, 0.7), strict=True)]
    table = results.compare({"one": one, "three": seeds}, groups=np.arange(300) // 2)
    assert table.loc["one", "val macro F1"] == "0.40"
    point, low, high = results.bootstrap_interval(labels, guesses[0], "macro_f1",
                                                  groups=np.arange(300) // 2)  # fmt: skip
    assert table.loc["one", "test macro F1 (95% CI)"] == f"{point:.2f} ({low:.2f}–{high:.2f})"
    assert low < f1_score(labels, guesses[0], average="macro") < high
    assert table.loc["one", "settings"] == "imagenet, lr 1e-4, 4 epochs"
    assert table.loc["three", "val macro F1"] == "0.60 ± 0.10 (3 seeds)"
    tests = [f1_score(labels, g, average="macro") for g in guesses]
    spread = f"{np.mean(tests):.2f} ± {np.std(tests, ddof=1):.2f} (3 seeds)"
    assert table.loc["three", "test macro F1 over seeds"] == spread
    assert table.loc["one", "test macro F1 over seeds"] == ""
