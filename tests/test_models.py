import hashlib

import numpy as np
import pytest
import torch
import torchvision
from skimage import data as skdata
from torch import nn

from course_utils import models
from course_utils.config import get_profile
from course_utils.data import ArrayDataset, resize_images

SMALL = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
MEDIUM = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))  # Inception: ≥ 75 px


@pytest.fixture
def torch_home(monkeypatch, tmp_path):
    """An empty torch hub cache, so no test sees weights a previous run downloaded."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def _cache_random_weights(arch: str, stage_weights) -> nn.Module:
    """Put a randomly initialised torchvision state dict where the hub cache expects it."""
    torch.manual_seed(1)
    net = models._TORCHVISION[arch][0](weights=None).eval()
    stage_weights(arch, net.state_dict())
    return net


@pytest.mark.parametrize("arch", models.ARCHITECTURES)
def test_every_architecture_builds_named_blocks_and_classifies(arch):
    model = models.build_model(arch, num_classes=7, weights=None, image_size=96).eval()
    names = models.block_names(model)
    assert names[-1] == "head" and len(names) == (5 if arch == "squeezenet1_1" else 6)
    assert model(MEDIUM).shape == (2, 7)


def test_vgg16_has_the_five_conv_blocks_of_the_paper():
    model = models.build_model("vgg16", 7, weights=None)
    convs = [
        sum(isinstance(m, nn.Conv2d) for m in getattr(model, f"block{i}").modules())
        for i in range(1, 6)
    ]
    assert convs == [2, 2, 3, 3, 3]
    assert all(isinstance(getattr(model, f"block{i}")[-1], nn.MaxPool2d) for i in range(1, 6))


@pytest.mark.parametrize("arch", list(models.WEIGHT_URLS))
def test_named_blocks_compute_exactly_what_torchvision_computes(arch, stage_weights):
    reference = _cache_random_weights(arch, stage_weights)
    model = models.build_model(arch, num_classes=1000, weights="imagenet", image_size=96).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(MEDIUM), reference(MEDIUM))


def test_efficientnet_lite0_weights_are_real_imagenet_weights_offline():
    model = models.build_model("efficientnet_lite0", num_classes=1000).eval()
    mean, std = models.input_stats("efficientnet_lite0")
    photos = resize_images(
        np.stack(
            [
                resize_images(skdata.chelsea()[None, :, 75:375], 224)[0],
                resize_images(skdata.coffee()[None, :, 100:500], 224)[0],
            ]
        ),
        224,
    )
    images, _ = ArrayDataset(photos, np.zeros(2), mean, std)[[0, 1]]
    with torch.no_grad():
        top1 = model(images).argmax(dim=1).tolist()
    classes = models.imagenet_classes()
    assert classes[top1[0]] in {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}
    assert classes[top1[1]] == "espresso"


def test_input_stats_follow_the_weights():
    assert models.input_stats("resnet18") == (models.IMAGENET_MEAN, models.IMAGENET_STD)
    mean, std = models.input_stats("efficientnet_lite0")
    assert mean[0] * 255 == pytest.approx(127) and std[0] * 255 == pytest.approx(128)


def test_seed_head_is_flatten_dense_dropout_dense_dropout_dense():
    model = models.build_model("vgg16", 7, weights=None, head="seed", image_size=64)
    kinds = [type(m) for m in model.head if not isinstance(m, nn.ReLU)]
    assert kinds == [models.SizedFlatten, nn.Linear, nn.Dropout, nn.Linear, nn.Dropout, nn.Linear]
    assert model.head[1].in_features == 512 * 2 * 2  # VGG16's 64 px input ends as 512×2×2
    assert model.head[-1].out_features == 7
    assert model.eval()(SMALL).shape == (2, 7)
    with pytest.raises(ValueError, match="Pass image_size=<your images' size> to build_model"):
        model(torch.zeros(1, 3, 32, 32))
    at_224 = models.make_head((512, 7, 7), 7, "seed")  # the seed's size: 25,088 inputs
    assert at_224[1].in_features == 25_088


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arch": "alexnet", "num_classes": 7}, "vgg16, resnet18"),
        ({"arch": "resnet18", "num_classes": 1}, "num_classes must be an integer ≥ 2"),
        ({"arch": "resnet18", "num_classes": 2.0}, "num_classes must be an integer ≥ 2"),
        ({"arch": "resnet18", "num_classes": 7, "weights": "chexpert"}, "'imagenet' or None"),
        ({"arch": "resnet18", "num_classes": 7, "head": "mlp"}, "linear, seed"),
    ],
)
def test_bad_arguments_name_the_valid_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        models.build_model(**kwargs)


def test_freeze_by_block_name_keeps_the_head_trainable():
    model = models.build_model("vgg16", 7, weights=None)
    models.freeze(model, trainable=["block5"])
    table = models.block_table(model)
    assert (table.loc[["block1", "block2", "block3", "block4"], "trainable"] == 0).all()
    for name in ("block5", "head"):
        assert table.loc[name, "trainable"] == table.loc[name, "parameters"] > 0
    models.freeze(model)  # a frozen feature extractor: only the head learns
    assert models.count_parameters(model, trainable_only=True) == models.count_parameters(
        model.head
    )
    models.freeze(model, trainable="block1")  # one name as a plain string works too
    assert models.count_parameters(model.block1, trainable_only=True) > 0


def test_freeze_rejects_unknown_block_names():
    model = models.build_model("resnet18", 2, weights=None)
    with pytest.raises(ValueError, match="stem, block1, block2, block3, block4, head"):
        models.freeze(model, trainable=["layer4"])


def test_weights_come_from_the_hub_cache_offline(stage_weights):
    reference = _cache_random_weights("resnet18", stage_weights)
    model = models.build_model("resnet18", 5, weights="imagenet", profile=get_profile("full"))
    torch.testing.assert_close(model.block1.state_dict(), reference.layer1.state_dict())
    assert models.available_weights()["resnet18"]


def _serve_weights(root, arch: str, good_hash: bool = True) -> tuple[str, nn.Module]:
    torch.manual_seed(2)
    net = models._TORCHVISION[arch][0](weights=None)
    payload = root / "tmp.pth"
    torch.save(net.state_dict(), payload)
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()[:8] if good_hash else "00000000"
    name = f"{arch}-{digest}.pth"
    payload.rename(root / name)
    return name, net


def test_weights_download_over_http_into_the_hub_cache(http_server, torch_home, monkeypatch):
    base, root = http_server.url, http_server.root
    name, net = _serve_weights(root, "resnet18")
    monkeypatch.setitem(models.WEIGHT_URLS, "resnet18", f"{base}/{name}")
    model = models.build_model("resnet18", 3, weights="imagenet", profile=get_profile("laptop"))
    torch.testing.assert_close(model.stem[0].weight, net.conv1.weight)
    assert [p.name for p in torch_home.iterdir() if not p.name.startswith(".")] == [name]


def test_weights_come_from_the_mirror_first(http_server, torch_home, monkeypatch):
    name, net = _serve_weights(http_server.root, "resnet18")
    (http_server.root / "weights").mkdir()
    (http_server.root / name).rename(http_server.root / "weights" / name)
    monkeypatch.setitem(models.WEIGHT_URLS, "resnet18", f"http://127.0.0.1:9/models/{name}")
    monkeypatch.setenv("COURSE_MIRROR", http_server.url)
    model = models.build_model("resnet18", 3, profile=get_profile("laptop"))
    torch.testing.assert_close(model.stem[0].weight, net.conv1.weight)
    assert [path for path, _ in http_server.requests] == [f"/weights/{name}"]


def test_fetch_weights_downloads_when_not_on_disk(http_server, torch_home, monkeypatch):
    """Notebook 03 asks for ResNet-50's weights: a fresh machine downloads them, not skips."""
    name, _ = _serve_weights(http_server.root, "resnet18")
    monkeypatch.setitem(models.WEIGHT_URLS, "resnet18", f"{http_server.url}/{name}")
    assert not models.available_weights()["resnet18"]
    assert models.fetch_weights("resnet18") == torch_home / name
    assert models.available_weights()["resnet18"]


def test_checksum_mismatch_leaves_nothing_in_the_cache(http_server, torch_home, monkeypatch):
    base, root = http_server.url, http_server.root
    name, _ = _serve_weights(root, "resnet18", good_hash=False)
    monkeypatch.setitem(models.WEIGHT_URLS, "resnet18", f"{base}/{name}")
    with pytest.raises(RuntimeError, match="expected one starting 00000000") as err:
        models.build_model("resnet18", 3, profile=get_profile("laptop"))
    assert str(torch_home / name) in str(err.value)  # says where to put a good copy
    assert not torch_home.exists() or not list(torch_home.iterdir())


def test_missing_weights_stop_outside_smoke_with_the_manual_steps(
    http_server, torch_home, monkeypatch
):
    base = http_server.url
    monkeypatch.setitem(models.WEIGHT_URLS, "resnet18", f"{base}/resnet18-f37072fd.pth")  # 404
    with pytest.raises(RuntimeError) as err:
        models.build_model("resnet18", 3, profile=get_profile("workshop"))
    message = str(err.value)
    assert "HTTP 404" in message and f"{base}/resnet18-f37072fd.pth" in message
    assert (
        str(torch_home / "resnet18-f37072fd.pth") in message and "COURSE_PROFILE=smoke" in message
    )


def test_smoke_falls_back_to_random_weights_with_a_banner(
    http_server, torch_home, monkeypatch, capsys
):
    base = http_server.url
    monkeypatch.setitem(models.WEIGHT_URLS, "resnet18", f"{base}/resnet18-f37072fd.pth")
    model = models.build_model("resnet18", 3, profile=get_profile("smoke"))
    assert "RANDOM weights" in capsys.readouterr().out
    assert model.eval()(SMALL).shape == (2, 3)


def test_corrupt_cached_weights_say_delete_and_download_again(torch_home):
    torch_home.mkdir(parents=True)
    models.weights_path("resnet18").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="delete it and download again"):
        models.build_model("resnet18", 3, profile=get_profile("full"))


def test_imagenet_classes_are_the_thousand_categories():
    classes = models.imagenet_classes()
    assert len(classes) == 1000 and classes[281] == "tabby"
    assert torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"] == classes


def test_smoke_prints_the_banner_once_per_architecture(
    http_server, torch_home, monkeypatch, capsys
):
    monkeypatch.setitem(models.WEIGHT_URLS, "resnet18", f"{http_server.url}/resnet18-f37072fd.pth")
    for _ in range(3):
        models.build_model("resnet18", 3, profile=get_profile("smoke"))
    out = capsys.readouterr().out
    assert out.count("RANDOM weights") == 1 and out.count("random weights again") == 2
    assert len(http_server.requests) == 1  # no second download attempt


def test_inception_blocks_expect_the_inputs_torchvision_converts_to(stage_weights):
    reference = _cache_random_weights("inception_v3", stage_weights)
    reference.transform_input = True  # what torchvision sets for its ImageNet weights
    # (random weights make activations huge, so compare relative to the output's size)
    ours = models.build_model(
        "inception_v3", 1000, image_size=96, profile=get_profile("full")
    ).eval()
    pixels = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    normalise = [
        (torch.tensor(m).view(1, 3, 1, 1), torch.tensor(s).view(1, 3, 1, 1))
        for m, s in [
            (models.IMAGENET_MEAN, models.IMAGENET_STD),
            models.input_stats("inception_v3"),
        ]
    ]
    with torch.no_grad():
        expected = reference((pixels - normalise[0][0]) / normalise[0][1])
        torch.testing.assert_close(
            ours((pixels - normalise[1][0]) / normalise[1][1]),
            expected,
            rtol=1e-2,
            atol=1e-3 * float(expected.abs().max()),
        )


def test_too_small_images_for_inception_are_a_clear_error():
    with pytest.raises(ValueError, match="inception_v3 needs images of at least 75 px"):
        models.build_model("inception_v3", 7, weights=None, image_size=32)


def test_lite0_batchnorm_follows_new_data_at_pytorchs_pace():
    model = models.build_model("efficientnet_lite0", 7)
    momenta = {m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    assert momenta == {
        0.1
    }  # not TensorFlow's 0.99 (= 0.01 here), which would lag for hundreds of steps
