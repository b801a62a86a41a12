"""Pieces for fine-tuning recipes and the architecture zoo: truncation, learning-rate groups,
class weights, rotation/flip augmentation, a class-balanced loader."""

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from course_utils import data, models, train
from course_utils.config import get_profile


def test_truncation_keeps_a_valid_network_and_its_weights():
    full = models.build_model("resnet18", 7, weights=None, profile=get_profile())
    short = models.truncate(full, "block3", num_classes=7)
    assert models.block_names(short) == ["stem", "block1", "block2", "block3", "head"]
    assert short.block3 is full.block3  # the pretrained blocks are reused, not copied
    kept = sum(
        models.count_parameters(getattr(full, b)) for b in ["stem", "block1", "block2", "block3"]
    )
    assert models.count_parameters(short) == kept + 256 * 7 + 7  # block3 ends with 256 channels
    assert short.eval()(torch.zeros(2, 3, 64, 64)).shape == (2, 7)
    with pytest.raises(ValueError, match="stem, block1, block2, block3, block4"):
        models.truncate(full, "head", 7)


def test_densenet_cut_after_block3_ends_at_the_third_dense_block():
    full = models.build_model("densenet121", 7, weights=None, image_size=64, profile=get_profile())
    short = models.truncate(full, "block3", num_classes=7, image_size=64)
    kinds = [type(module).__name__ for module in short.modules()]
    assert kinds.count("_Transition") == 2 and kinds.count("_DenseBlock") == 3
    assert short.head[-1].in_features == 1024  # dense block 3's output, before transition3
    assert short.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 7)


def test_param_groups_give_the_head_its_own_learning_rate():
    model = models.freeze(
        models.build_model("resnet18", 7, weights=None, profile=get_profile()), ["block3", "block4"]
    )
    groups = train.param_groups(model, lr=1e-3, pretrained_factor=0.1)
    assert [g["name"] for g in groups] == ["head", "pretrained blocks"]
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 1e-4])
    grouped = [p for g in groups for p in g["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(grouped) == len(trainable) and {id(p) for p in grouped} == {id(p) for p in trainable}
    optimizer = torch.optim.Adam(groups)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-3, 1e-4])


def test_class_weights_match_sklearns_balanced_weights():
    labels = np.array([0, 0, 0, 0, 1, 1, 2])
    expected = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    np.testing.assert_allclose(train.class_weights(labels, 3).numpy(), expected, rtol=1e-6)


def test_a_class_without_images_gets_a_finite_weight_and_the_others_keep_theirs():
    """Notebook 10's Exercise 3 asks for this: the empty class counts as one image."""
    weights = train.class_weights(np.array([0, 0, 0, 1]), 3).numpy()
    np.testing.assert_allclose(weights, [4 / 9, 4 / 3, 4 / 3], rtol=1e-6)


def test_param_groups_with_only_the_head_learning_is_one_group():
    model = models.freeze(models.build_model("resnet18", 7, weights=None, profile=get_profile()))
    groups = train.param_groups(model, lr=1e-3)
    assert [g["name"] for g in groups] == ["head"]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.head.parameters()}


def test_rotation_and_flip_move_pixels_but_keep_them():
    x = (
        torch.arange(16 * 4 * 4, dtype=torch.float32)
        .view(16, 1, 4, 4)
        .expand(-1, 3, -1, -1)
        .clone()
    )
    out = data.rotate_flip(torch.Generator().manual_seed(0))(x)
    assert out.shape == x.shape
    for before, after in zip(x, out, strict=True):
        assert torch.equal(before.flatten().sort().values, after.flatten().sort().values)
    assert (out != x).any(dim=(1, 2, 3)).sum() > 8  # most images changed
    again = data.rotate_flip(torch.Generator().manual_seed(0))(x)
    assert torch.equal(out, again)


def test_a_balanced_loader_draws_every_class_about_equally():
    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    images = np.zeros((100, 4, 4), np.uint8)
    loader = data.make_loader(
        images, labels, batch_size=50, mean=(0.5,) * 3, std=(0.5,) * 3, balanced=True, seed=1
    )
    drawn = torch.cat([y for _ in range(20) for _, y in loader]).numpy()
    shares = np.bincount(drawn, minlength=3) / len(drawn)
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.05)


@pytest.mark.parametrize("profile_name", ["laptop", "smoke"])
def test_a_kept_run_is_reused_without_the_imagenet_weights_file(
    stage_weights, capsys, profile_name
):
    """A workshop room without network: kept runs load; only training again needs the weights."""
    import torchvision

    from course_utils import datasets, experiments
    from course_utils.config import get_profile

    profile = get_profile(profile_name)
    weights_file = stage_weights("squeezenet1_1", torchvision.models.squeezenet1_1().state_dict())
    splits = datasets.load_sample("xray", 32, 60).split("60/20/20", seed=0)
    torch.manual_seed(0)
    trained, first = experiments.arch_run("sq", "squeezenet1_1", splits, profile=profile)
    assert not first.reused and first.info["recipe"]["weights"] == "imagenet"

    weights_file.unlink()  # the USB stick had results/ but not the torch hub cache
    reused, again = experiments.arch_run("sq", "squeezenet1_1", splits, profile=profile)
    assert again.reused and "reusing the run kept on" in capsys.readouterr().out
    for a, b in zip(trained.state_dict().values(), reused.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    if profile_name == "laptop":
        with pytest.raises(RuntimeError, match="Could not load the ImageNet weights for squeez"):
            experiments.arch_run("sq", "squeezenet1_1", splits, profile=profile, rerun=True)
    else:  # smoke trains again from random weights, says so, and records it
        _, fallback = experiments.arch_run(
            "sq", "squeezenet1_1", splits, profile=profile, rerun=True
        )
        assert "RANDOM weights" in capsys.readouterr().out
        assert fallback.info["recipe"]["weights"] == "random (ImageNet unavailable)"


def test_looking_for_a_kept_run_does_not_change_a_new_run(stage_weights, monkeypatch):
    """With or without the weights file on disk, a training run draws the same random numbers."""
    import torchvision

    from course_utils import datasets, experiments
    from course_utils.config import get_profile

    stage_weights("squeezenet1_1", torchvision.models.squeezenet1_1().state_dict())
    splits = datasets.load_sample("xray", 32, 60).split("60/20/20", seed=0)
    laptop = get_profile("laptop")
    torch.manual_seed(0)
    _, direct = experiments.arch_run("a", "squeezenet1_1", splits, profile=laptop)
    monkeypatch.setattr(experiments, "available_weights", lambda: {"squeezenet1_1": False})
    torch.manual_seed(0)
    _, looked = experiments.arch_run("b", "squeezenet1_1", splits, profile=laptop)
    assert not looked.reused
    np.testing.assert_allclose(direct.probs, looked.probs, rtol=1e-5, atol=1e-6)


def test_recipes_describe_optimisers_and_losses_by_what_they_do():
    from course_utils.results import describe, layout_digest, recipe_of

    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 2))
    groups = [{"params": model[0].parameters(), "lr": 1e-3, "name": "head"}]
    text = describe(torch.optim.Adam(groups, lr=1e-4, weight_decay=0.01))
    assert text.startswith("Adam([{'parameters': 8, 'amsgrad': False, 'betas': (0.9, 0.999)")
    assert "'lr': 0.001" in text and "'name': 'head'" in text
    assert (
        "fused" not in text and "foreach" not in text
    )  # settings that vary between torch releases
    assert describe(torch.optim.Adam(model.parameters())) != describe(
        torch.optim.Adam(model[1].parameters())
    )
    weighted = describe(torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0])))
    assert "'weight': [1.0, 3.0]" in weighted and weighted.startswith("CrossEntropyLoss(")
    assert describe(torch.nn.CrossEntropyLoss()) != weighted
    assert describe(torch.nn.CrossEntropyLoss(label_smoothing=0.1)) != describe(
        torch.nn.CrossEntropyLoss()
    )
    before = layout_digest(model)
    model[0].requires_grad_(False)
    assert layout_digest(model) != before  # freezing a block is a different recipe
    assert recipe_of(model, {}, {"epochs": 2, "progress": False}) == recipe_of(
        model, {}, {"epochs": 2, "progress": True}
    )


def test_starting_from_a_run_that_is_not_kept_says_which_notebook_to_run():
    """A fresh Colab VM: notebook 06's HAM10000 start needs notebook 05's kept run."""
    from course_utils import datasets, experiments
    from course_utils.config import get_profile

    splits = datasets.load_sample("xray", 32, 60).split("60/20/20", seed=0)
    with pytest.raises(FileNotFoundError, match="Run notebook 05_freeze_strategies first"):
        experiments.vgg16_run(
            "x", splits, trainable=(), init_from="vgg16_all_layers", profile=get_profile("smoke")
        )
