"""Check functions for the notebooks' exercises: each prints ✅ (and why) or ❌ (and a hint)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from course_utils.data import HAM10000_COUNTS


def report(correct: bool, success: str, hint: str) -> None:
    """Print ✅ and the success message, or ❌ and the hint."""
    print(f"✅ {success}" if correct else f"❌ {hint}")


def _unanswered(*answers: object) -> bool:
    if any(a is None or a is Ellipsis for a in answers):
        print("❌ Not answered yet: replace the None (or ...) with your answer, then run the cell.")
        return True
    return False


def _check_function(
    fn: Callable[..., object] | None,
    cases: list[tuple[tuple, object]],
    success: str,
    hint: Callable[[tuple, object, object], str],
) -> None:
    """Call fn(*args) for every (args, expected) case: ✅ if all match, else ❌ with a hint."""
    if _unanswered(fn):
        return
    for args, expected in cases:
        got = fn(*args)
        if _unanswered(got):
            return
        if got != expected:
            return report(False, "", hint(args, expected, got))
    return report(True, success, "")


# 00_setup -----------------------------------------------------------------------------------


def check_seeded_draws(first: torch.Tensor | None, second: torch.Tensor | None) -> None:
    """Exercise: two draws made right after the same seed_everything(...) are identical."""
    if _unanswered(first, second):
        return
    same = torch.is_tensor(first) and torch.is_tensor(second) and torch.equal(first, second)
    return report(
        same,
        "Same seed, same numbers: your runs can be repeated.",
        "The draws differ, or are not torch tensors: call seed_everything with the same seed "
        "right before each torch.rand(3).",
    )


def check_nv_share(answer: float | None) -> None:
    """Exercise: the share of melanocytic nevi (nv) among HAM10000's images, as a fraction."""
    if _unanswered(answer):
        return
    share = HAM10000_COUNTS["nv"] / sum(HAM10000_COUNTS.values())
    value = float(answer) / 100 if float(answer) > 1 else float(answer)
    return report(
        abs(value - share) < 0.01,
        f"{share:.1%} of the images are nv: a model that always says nv is "
        f"{share:.0%} accurate and useless. That is why we report macro F1.",
        "Divide the nv count by the total of all seven counts.",
    )


# 01_cnn_basics ------------------------------------------------------------------------------


def check_output_size(fn: Callable[[int, int, int, int], int] | None) -> None:
    """Exercise: fn(size, kernel, stride, padding) gives a convolution's output size."""
    settings = [(32, 3, 1, 1), (32, 3, 2, 1), (224, 7, 2, 3), (28, 5, 1, 0), (15, 3, 2, 0)]
    cases = [
        ((n, k, s, p), nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, n, n)).shape[-1])
        for n, k, s, p in settings
    ]
    _check_function(
        fn,
        cases,
        "Your formula matches torch on every case.",
        lambda args, expected, got: (
            f"For size, kernel, stride, padding = {args} torch gives {expected}, your function "
            f"{got}. Hint: (size + 2·padding − kernel) // stride + 1."
        ),
    )


def check_conv_parameters(answer: int | None) -> None:
    """Exercise: the number of learnable parameters of nn.Conv2d(3, 16, kernel_size=5)."""
    if _unanswered(answer):
        return
    expected = sum(p.numel() for p in nn.Conv2d(3, 16, kernel_size=5).parameters())
    return report(
        isinstance(answer, int | np.integer) and answer == expected,
        f"{expected} = 16 filters × (3 channels × 5 × 5 weights) + 16 biases.",
        "Each of the 16 filters has one 5×5 weight per input channel, plus one bias.",
    )


def check_horizontal_edge_kernel(kernel: np.ndarray | None) -> None:
    """Exercise: a 3×3 kernel that answers dark-above-bright-below edges, not vertical or flat."""
    if _unanswered(kernel):
        return
    kernel = np.asarray(kernel, dtype=float)
    if kernel.shape != (3, 3):
        return report(False, "", f"The kernel must be 3×3 (got shape {kernel.shape}).")
    step = np.zeros((9, 9))
    step[5:] = 1  # dark above, bright below: a horizontal edge
    weight = torch.tensor(kernel, dtype=torch.float32).view(1, 1, 3, 3)

    def response(image: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.conv2d(
            torch.tensor(image, dtype=torch.float32)[None, None], weight
        )

    edge = response(step)
    strongest = float(edge.max() if edge.max() >= -edge.min() else edge.min())
    vertical = float(response(step.T).abs().max())
    flat = float(response(np.ones((9, 9))).abs().max())
    measured = (
        f"Responses: horizontal edge {strongest:.2f}, vertical edge {vertical:.2f}, "
        f"flat {flat:.2f}."
    )
    if strongest < 0:
        return report(
            False,
            "",
            f"{measured} Your kernel answers the edge with a negative "
            "value: it looks for bright above dark. Flip its sign.",
        )
    ok = strongest > 0 and vertical <= 0.1 * strongest and flat <= 1e-6 * (1 + strongest)
    return report(
        ok,
        f"{measured} You built a Sobel-like detector.",
        f"{measured} Make the rows differ (negative on top, positive below), let every "
        "column be the same, and make the weights sum to 0.",
    )


# 02_datasets --------------------------------------------------------------------------------


def check_patient_id(fn: Callable[[str], str] | None) -> None:
    """Exercise: fn(file name) returns the patient of a chest X-ray file of Kermany et al."""
    from course_utils.datasets import xray_patient

    names = [
        "person1_bacteria_1.jpeg",
        "person1_virus_6.jpeg",
        "person1619_bacteria_4261.jpeg",
        "IM-0115-0001.jpeg",
        "NORMAL2-IM-0115-0002.jpeg",
        "NORMAL2-IM-1427-0001.jpeg",
    ]
    _check_function(
        fn,
        [((name,), xray_patient(name)) for name in names],
        "Every file maps to its patient: these are the groups a split must respect.",
        lambda args, expected, got: (
            f"For {args[0]!r} you return {got!r}; the patient is {expected!r}. Hint: "
            "re.match(r'(person\\d+)_', name) or re.search(r'(IM-\\d+)-', name)."
        ),
    )


def check_leaked_lesions(fn: Callable[[np.ndarray, np.ndarray], int] | None) -> None:
    """Exercise: fn(train_groups, test_groups) counts the lesions with images on both sides."""
    rng = np.random.default_rng(0)
    pairs = [
        (rng.integers(0, 30, 40).astype(str), rng.integers(20, 50, 15).astype(str))
        for _ in range(5)
    ]
    _check_function(
        fn,
        [(pair, len(np.intersect1d(*pair))) for pair in pairs],
        "Right: each of those lesions is seen in training and then 'tested'.",
        lambda args, expected, got: (
            f"Expected {expected}, got {got}. Count each shared lesion once, however many "
            "images it has (np.intersect1d or set &)."
        ),
    )


def check_majority_baseline(
    accuracy: float | None, macro_f1: float | None, labels: np.ndarray, num_classes: int
) -> None:
    """Exercise: accuracy and macro F1 of always predicting the most frequent class."""
    from course_utils.metrics import classification_scores

    if _unanswered(accuracy, macro_f1):
        return
    labels = np.asarray(labels).reshape(-1)
    majority = np.full_like(labels, np.bincount(labels).argmax())
    scores = classification_scores(labels, majority, num_classes)
    ok = abs(accuracy - scores["accuracy"]) < 0.01 and abs(macro_f1 - scores["macro_f1"]) < 0.01
    return report(
        ok,
        f"Accuracy {scores['accuracy']:.2f} but macro F1 {scores['macro_f1']:.2f}: "
        "a useless model can look accurate on imbalanced data.",
        f"Expected accuracy {scores['accuracy']:.2f} and macro F1 {scores['macro_f1']:.2f}. "
        "Predict np.bincount(labels).argmax() for every image and score it with "
        "classification_scores or f1_table.",
    )


# 05_freeze_strategies -----------------------------------------------------------------------


def check_trainable_parameters(
    answer: int | None, trainable: tuple[str, ...], classes: int
) -> None:
    """Exercise: VGG16 (seed head, profile's image size) parameters that learn with `trainable`."""
    from course_utils.models import build_model, count_parameters, freeze

    if _unanswered(answer):
        return
    model = freeze(build_model("vgg16", classes, weights=None, head="seed"), trainable)
    expected = count_parameters(model, trainable_only=True)
    report(
        answer == expected,
        f"{expected:,} parameters learn: the unfrozen blocks plus the head.",
        f"Expected {expected:,}: sum the 'trainable' column of block_table(model) after freeze.",
    )


def check_best_strategy(answer: str | None, table) -> None:
    """Exercise: a column of `table` with the highest macro-average F1 (ties: any of them)."""
    if _unanswered(answer):
        return
    macro = table.loc["macro avg"]
    best = list(macro.index[macro == macro.max()])
    report(
        answer in best,
        f"Yes: {answer!r} has the best macro F1, {macro.max():.2f}.",
        f"Not that one: look at the 'macro avg' row; the largest value is {macro.max():.2f}.",
    )


# 04_baselines -------------------------------------------------------------------------------


def check_pixel_features(answer: int | None, size: int, channels: int) -> None:
    """Exercise: how many pixel features one size×size image with `channels` gives a tree."""
    if _unanswered(answer):
        return
    expected = size * size * channels
    report(
        answer == expected,
        f"{expected:,} features: one per pixel and colour channel.",
        "Multiply height, width and the number of colour channels.",
    )


def check_balanced_accuracy(answer: float | None, run) -> None:
    """Exercise: the balanced accuracy of a kept run's test predictions."""
    from course_utils.metrics import classification_scores

    if _unanswered(answer):
        return
    scores = classification_scores(run.labels, run.probs.argmax(axis=1), run.probs.shape[1])
    expected = scores["balanced_accuracy"]
    report(
        abs(float(answer) - expected) < 1e-3,
        f"{expected:.3f}, against accuracy {scores['accuracy']:.3f}: rare classes pull it down.",
        f"Expected {expected:.3f}: predictions are probs.argmax(axis=1); then average the "
        "recall of each class (sklearn's balanced_accuracy_score).",
    )


# 06_chest_xray_transfer ---------------------------------------------------------------------


def check_sensitivity(fn) -> None:
    """Exercise: fn(labels, predicted) returns the sensitivity (recall of class 1, pneumonia)."""
    cases = [
        ([1, 1, 1, 0], [1, 1, 0, 0]),
        ([1, 0, 1, 0, 1], [1, 1, 1, 0, 0]),
        ([0, 1, 1], [0, 0, 0]),
    ]
    _check_function(
        fn,
        [
            ((np.array(a), np.array(b)), float(np.mean(np.array(b)[np.array(a) == 1] == 1)))
            for a, b in cases
        ],
        "Right: among the X-rays that show pneumonia, the share the model flags.",
        lambda args, expected, got: (
            f"For labels {args[0].tolist()} and predictions {args[1].tolist()} the sensitivity "
            f"is {expected:.2f}, not {got}. Only the images whose label is 1 count."
        ),
    )


# 03_imagenet_pretraining --------------------------------------------------------------------


def check_astronaut(answer: str | None) -> None:
    """Exercise: EfficientNet-Lite0's top-1 ImageNet category for skimage's astronaut photo."""
    from skimage import data as skdata

    from course_utils.data import ArrayDataset, resize_images
    from course_utils.models import build_model, imagenet_classes, input_stats

    if _unanswered(answer):
        return
    photo = skdata.astronaut()
    side = min(photo.shape[:2])
    left = (photo.shape[1] - side) // 2
    square = resize_images(photo[None, :side, left : left + side], 224)
    model = build_model("efficientnet_lite0", num_classes=1000).eval()
    images, _ = ArrayDataset(square, np.zeros(1), *input_stats("efficientnet_lite0"))[[0]]
    with torch.no_grad():
        expected = imagenet_classes()[int(model(images).argmax())]
    report(
        str(answer).strip().lower() == expected.lower(),
        f"{expected!r}: ImageNet has no "
        "'person' class, so the network names the nearest thing it knows.",
        "Not what the model says. Crop the centre square, resize to 224 px, normalise with "
        "input_stats('efficientnet_lite0'), and take the argmax of the logits.",
    )


def check_scenario(answer: str | None) -> None:
    """Exercise: the transfer scenario for 600 retinal OCT scans (small, unlike ImageNet)."""
    if _unanswered(answer):
        return
    report(
        str(answer).strip().upper() == "C",
        "C: small and different. Train a linear classifier on codes from earlier layers; "
        "the top layers are too ImageNet-specific.",
        "Ask two questions: is 600 images small or large, and do OCT scans look like "
        "ImageNet's photographs?",
    )


# 07_activation_visualisation ----------------------------------------------------------------


def _block_output(arch: str, block: str, size: int) -> torch.Size:
    from course_utils.models import build_model
    from course_utils.viz import activations

    model = build_model(arch, num_classes=2, weights=None, image_size=size)
    return activations(model, torch.zeros(1, 3, size, size), [block])[block].shape


def check_block_channels(answer: int | None, arch: str, block: str) -> None:
    """Exercise: the number of channels a block outputs."""
    if _unanswered(answer):
        return
    expected = _block_output(arch, block, 64)[1]
    report(
        answer == expected,
        f"{expected} channels: {expected} filters, each a feature map.",
        "Record the block with activations(...) and read shape[1] (N × C × H × W).",
    )


def check_block_side(answer: int | None, arch: str, block: str, size: int) -> None:
    """Exercise: the width of a block's feature maps for a size×size input."""
    if _unanswered(answer):
        return
    expected = _block_output(arch, block, size)[-1]
    report(
        answer == expected,
        f"{expected} px: every stride-2 layer halves the size.",
        "Record the block for a 224×224 input and read the last axis of its shape.",
    )


# 08_error_analysis --------------------------------------------------------------------------


def check_threshold(
    answer: float | None, labels: np.ndarray, scores: np.ndarray, target: float
) -> None:
    """Exercise: the highest threshold whose sensitivity on (labels, scores) reaches `target`."""
    from course_utils.metrics import threshold_for_sensitivity

    if _unanswered(answer):
        return
    expected = threshold_for_sensitivity(labels, scores, target)
    report(
        abs(float(answer) - expected) < 1e-9,
        f"{expected:.4f}: any higher and a positive would fall below it.",
        f"Not quite ({float(answer):.4f}). Among the scores of the positive images, sorted from "
        f"high to low, take the one at position ceil({target} × number of positives).",
    )


def check_ece(fn) -> None:
    """Exercise: fn(probs, labels, bins) computes the expected calibration error."""
    from course_utils.metrics import expected_calibration_error

    rng = np.random.default_rng(0)
    cases = []
    for classes, bins in ((2, 5), (3, 10), (7, 4)):
        logits = rng.normal(size=(60, classes)) * 2
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        labels = rng.integers(0, classes, 60)
        cases.append(((probs, labels, bins), expected_calibration_error(probs, labels, bins)))
    _check_function(
        lambda *args: None if fn is None or fn(*args) is None else round(float(fn(*args)), 6),
        [(args, round(expected, 6)) for args, expected in cases],
        "Your ECE matches on several binnings: bins weighted by their share of predictions.",
        lambda args, expected, got: (
            f"With {args[1].max() + 1} classes and {args[2]} bins: expected {expected:.4f}, got "
            f"{got}. Weight each bin's |confidence − accuracy| by its count; divide by the total."
        ),
    )


# 09_architectures ---------------------------------------------------------------------------


def check_cheapest(answer: str | None, table, column: str) -> None:
    """Exercise: the row of `table` with the smallest value in `column` (ties: any of them)."""
    if _unanswered(answer):
        return
    values = table[column]
    best = list(values.index[values == values.min()])
    report(
        answer in best,
        f"Yes: {answer!r} has the smallest {column}, {values.min():,.3g}.",
        f"Not that one: sort the table by {column!r} and take the first row.",
    )


def check_truncated_parameters(answer: int | None, arch: str, cut: str, classes: int) -> None:
    """Exercise: the parameters of `arch` truncated after block `cut`, with a new linear head."""
    from course_utils.models import build_model, count_parameters, truncate

    if _unanswered(answer):
        return
    expected = count_parameters(truncate(build_model(arch, classes, weights=None), cut, classes))
    report(
        answer == expected,
        f"{expected:,} parameters: the kept blocks plus the new head.",
        "Build the model, truncate it, then count_parameters(...). The head is "
        "channels × classes + classes.",
    )


# 10_finetuning_recipes ----------------------------------------------------------------------


def check_pretrained_lr(answer: float | None, lr: float, factor: float) -> None:
    """Exercise: the learning rate param_groups gives the pretrained blocks."""
    if _unanswered(answer):
        return
    expected = lr * factor
    report(
        abs(float(answer) - expected) < 1e-12,
        f"{expected:g}: the head's rate times the factor.",
        "The head gets lr; every other trainable block gets lr × pretrained_factor.",
    )


def check_small_data_rule(answer: list[str] | None) -> None:
    """Exercise: the blocks to unfreeze for 600 images (none: only the head, the last layer)."""
    if _unanswered(answer):
        return
    names = {answer} if isinstance(answer, str) else set(answer)
    report(
        names <= {"head"},
        "Right: freeze(model, trainable=[]) leaves only the head learning.",
        "With fewer than about 1,000 images, train only the last layer. freeze() always keeps "
        "the head trainable, so no block needs naming.",
    )
