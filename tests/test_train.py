import copy

import numpy as np
import pytest
import torch
from sklearn import metrics as sk
from torch import nn

from course_utils import train
from course_utils.config import get_profile
from course_utils.data import make_loader, make_sample
from course_utils.models import build_model, freeze

MEAN, STD = (0.5,) * 3, (0.5,) * 3
SAMPLE = make_sample("derma", image_size=16, num_samples=120, seed=0)


def small_cnn(num_classes: int = 7) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(8 * 8 * 8, num_classes)),
    )


def loaders(shuffle: bool = True, batch_size: int = 16):
    train_loader = make_loader(
        SAMPLE["train_images"],
        SAMPLE["train_labels"],
        batch_size=batch_size,
        mean=MEAN,
        std=STD,
        shuffle=shuffle,
    )
    val_loader = make_loader(
        SAMPLE["val_images"], SAMPLE["val_labels"], batch_size=64, mean=MEAN, std=STD
    )
    return train_loader, val_loader


def test_fit_does_exactly_what_a_hand_written_loop_does():
    model, reference = small_cnn(), small_cnn()
    train_loader, _ = loaders(shuffle=False)
    torch.manual_seed(1)
    history = train.fit(model, train_loader, epochs=2, lr=1e-2, progress=False)

    torch.manual_seed(1)  # the same dropout masks
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-2, fused=True)  # fit's default
    # Contiguous NCHW, as make_loader serves it: the same convolution kernels, the same rounding.
    images = torch.from_numpy(SAMPLE["train_images"]).permute(0, 3, 1, 2).contiguous() / 255
    images, labels = (images - 0.5) / 0.5, torch.from_numpy(SAMPLE["train_labels"].ravel()).long()
    losses = []
    for _ in range(2):
        reference.train()
        for start in range(0, len(images), 16):
            loss = nn.functional.cross_entropy(
                reference(images[start : start + 16]), labels[start : start + 16]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item() * len(labels[start : start + 16]))

    for ours, theirs in zip(
        model.state_dict().values(), reference.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(ours, theirs)
    per_epoch = len(losses) // 2
    assert history["train_loss"][1] == pytest.approx(
        sum(losses[per_epoch:]) / len(images), rel=1e-5
    )


@pytest.mark.parametrize("layout", ["rgb", "grey", "grey with a channel axis"])
def test_loader_batches_are_contiguous(layout):
    """A permuted (channels-last-strided) batch would make CPU convolutions about 25% slower."""
    name = "derma" if layout == "rgb" else "xray"
    images = make_sample(name, image_size=16, num_samples=40, seed=0)["train_images"]
    if layout == "grey with a channel axis":
        images = images[..., None]
    loader = make_loader(images, np.zeros(len(images)), batch_size=8, mean=MEAN, std=STD)
    batch, _ = next(iter(loader))
    assert batch.shape == (8, 3, 16, 16) and batch.dtype == torch.float32
    assert batch.is_contiguous()
    assert loader.dataset[0][0].is_contiguous()


def test_history_records_every_epoch_and_throughput():
    train_loader, val_loader = loaders()
    history = train.fit(
        small_cnn(), train_loader, val_loader, epochs=3, monitor="val_macro_f1", progress=False
    )
    frame = history.to_frame()
    assert list(frame.index) == [1, 2, 3]
    for column in (
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "val_balanced_accuracy",
        "val_macro_f1",
        "images_per_s",
    ):
        assert column in frame
    assert history.best["val_macro_f1"] == frame["val_macro_f1"].max()
    assert history.images_per_s > 0 and (frame["train_images"] == 84).all()


def test_early_stopping_restores_the_best_weights():
    train_loader, val_loader = loaders()
    model = small_cnn()
    snapshot = {}

    def spoil_after_first_epoch(history):
        if len(history.epochs) == 1:  # keep epoch 1's weights, then wreck the model
            snapshot.update(copy.deepcopy(model.state_dict()))
            with torch.no_grad():
                for p in model.parameters():
                    p.mul_(50)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the weights only change above
    history = train.fit(
        model,
        train_loader,
        val_loader,
        epochs=5,
        optimizer=optimizer,
        patience=2,
        on_epoch_end=spoil_after_first_epoch,
        progress=False,
    )
    assert history.best_epoch == 1 and history.stopped_early and len(history.epochs) == 3
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, snapshot[name])


def test_best_weights_of_a_partly_frozen_model_are_restored_exactly():
    # Only the trainable blocks' state is copied each epoch: it must still restore all of it,
    # BatchNorm statistics of the training block included, and leave frozen blocks as they were.
    train_loader, val_loader = loaders()
    model = _frozen_resnet()
    initial, snapshot = copy.deepcopy(model.state_dict()), {}

    def spoil_after_first_epoch(history):
        if len(history.epochs) == 1:
            snapshot.update(copy.deepcopy(model.state_dict()))
            with torch.no_grad():
                for p in model.parameters():
                    if p.requires_grad:
                        p.mul_(50)

    history = train.fit(
        model,
        train_loader,
        val_loader,
        epochs=4,
        optimizer=torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.0),
        patience=2,
        on_epoch_end=spoil_after_first_epoch,
        progress=False,
    )
    assert history.best_epoch == 1 and history.stopped_early
    assert not torch.equal(
        initial["block4.0.bn1.running_mean"], snapshot["block4.0.bn1.running_mean"]
    )
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, snapshot[name], rtol=0, atol=0, msg=name)
        if name.startswith(("stem", "block1", "block2", "block3")):
            assert torch.equal(value, initial[name]), name


def test_on_epoch_end_can_stop_training():
    train_loader, _ = loaders()
    history = train.fit(
        small_cnn(), train_loader, epochs=4, on_epoch_end=lambda h: True, progress=False
    )
    assert len(history.epochs) == 1 and history.monitor == "train_loss"


def test_frozen_blocks_keep_their_weights_and_batchnorm_statistics():
    model = build_model("resnet18", 7, weights=None, profile=get_profile())
    freeze(model, trainable=["block4"])
    before = copy.deepcopy(model.state_dict())
    train_loader, _ = loaders()
    train.fit(model, train_loader, epochs=1, progress=False)
    after = model.state_dict()
    for name in before:
        same = torch.equal(before[name], after[name])
        if name.startswith(("stem", "block1", "block2", "block3")):
            assert same, f"{name} changed although its block is frozen"
    assert not torch.equal(before["block4.0.conv1.weight"], after["block4.0.conv1.weight"])
    assert not torch.equal(before["head.3.weight"], after["head.3.weight"])


def test_evaluate_and_predict_agree_with_sklearn():
    model = small_cnn()
    _, val_loader = loaders()
    probs, labels = train.predict(model, val_loader, device=torch.device("cpu"))
    assert probs.shape == (len(SAMPLE["val_labels"]), 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(labels, SAMPLE["val_labels"].ravel())
    scores = train.evaluate(model, val_loader)
    assert scores["accuracy"] == pytest.approx(sk.accuracy_score(labels, probs.argmax(1)))
    assert scores["loss"] == pytest.approx(sk.log_loss(labels, probs, labels=range(7)), rel=1e-4)
    assert scores["macro_f1"] == pytest.approx(
        sk.f1_score(labels, probs.argmax(1), average="macro", labels=range(7), zero_division=0)
    )


def test_labels_beyond_the_model_outputs_are_a_clear_error():
    train_loader, _ = loaders()
    with pytest.raises(ValueError, match="model has 2 outputs: build it with num_classes"):
        train.fit(small_cnn(num_classes=2), train_loader, epochs=1, progress=False)


def test_unknown_monitor_and_zero_epochs_are_errors():
    train_loader, val_loader = loaders()
    with pytest.raises(ValueError, match="Cannot monitor 'val_auc'.*val_macro_f1"):
        train.fit(
            small_cnn(), train_loader, val_loader, epochs=1, monitor="val_auc", progress=False
        )
    with pytest.raises(ValueError, match="epochs must be ≥ 1"):
        train.fit(small_cnn(), train_loader, epochs=0)


def _frozen_resnet(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return freeze(
        build_model("resnet18", 7, weights=None, profile=get_profile()), trainable=["block4"]
    )


@pytest.mark.parametrize("with_val", [True, False])
def test_cached_frozen_prefix_gives_the_same_training_as_recomputing(with_val, capsys):
    results = {}
    for cache in (False, True):
        model = _frozen_resnet()
        train_loader, val_loader = loaders(shuffle=True)
        torch.manual_seed(3)
        history = train.fit(
            model,
            train_loader,
            val_loader if with_val else None,
            epochs=3,
            lr=1e-2,
            cache_frozen=cache,
        )
        results[cache] = (history.to_frame(), model.state_dict())
    assert "Frozen stem, block1, block2, block3: computed once" in capsys.readouterr().out
    columns = [c for c in results[True][0] if "seconds" not in c and "per_s" not in c]
    np.testing.assert_allclose(
        results[True][0][columns], results[False][0][columns], rtol=1e-4, atol=1e-5
    )
    for name, value in results[True][1].items():
        torch.testing.assert_close(value, results[False][1][name], rtol=1e-4, atol=1e-5)


def test_prefix_is_not_cached_when_that_would_change_the_result():
    model = _frozen_resnet()
    train_loader, val_loader = loaders()
    device = torch.device("cpu")
    assert train.frozen_prefix_length(model) == 4
    assert train.cache_frozen_prefix(model, [train_loader, val_loader], device) is not None
    augmented = make_loader(
        SAMPLE["train_images"],
        SAMPLE["train_labels"],
        batch_size=16,
        mean=MEAN,
        std=STD,
        transform=lambda x: x.flip(-1),
    )
    assert train.cache_frozen_prefix(model, [augmented], device) is None  # random input each epoch
    assert train.cache_frozen_prefix(model, [train_loader], device, budget=1) is None  # too big
    freeze(model, trainable=["stem", "block4"])
    assert train.frozen_prefix_length(model) == 0  # the first block trains: nothing to cache
    assert train.frozen_prefix_length(small_cnn()) == 0


def test_cnn_codes_are_pooled_block_outputs():
    model = build_model("resnet18", 7, weights=None, profile=get_profile()).eval()
    _, val_loader = loaders()
    codes, labels = train.cnn_codes(model, val_loader, device=torch.device("cpu"))
    assert codes.shape == (len(SAMPLE["val_labels"]), 512)
    np.testing.assert_array_equal(labels, SAMPLE["val_labels"].ravel())
    images, _ = next(iter(val_loader))
    with torch.no_grad():
        expected = model[:-1](images).mean(dim=(2, 3))
    np.testing.assert_allclose(codes[: len(images)], expected.numpy(), rtol=1e-5, atol=1e-6)
    earlier, _ = train.cnn_codes(model, val_loader, upto="block2")
    assert earlier.shape[1] == 128
    with pytest.raises(ValueError, match="stem, block1"):
        train.cnn_codes(model, val_loader, upto="head")
