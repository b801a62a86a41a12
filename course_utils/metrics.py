"""Classification metrics in the seed's table form, computed from a confusion matrix."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts C[i, j] of images of true class i predicted as class j."""
    y_true = np.asarray(y_true).reshape(-1).astype(np.int64)  # uint8 labels would overflow
    y_pred = np.asarray(y_pred).reshape(-1).astype(np.int64)
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions.")
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (sklearn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def per_class_scores(cm: np.ndarray) -> pd.DataFrame:
    """Precision, recall (sensitivity), F1 and support per class from a confusion matrix.

    F1 is NaN for a class that is neither in the labels nor in the predictions: nothing to score.
    """
    tp = np.diag(cm).astype(float)
    precision = _safe_divide(tp, cm.sum(axis=0))
    recall = _safe_divide(tp, cm.sum(axis=1))
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    f1[(cm.sum(axis=0) == 0) & (cm.sum(axis=1) == 0)] = np.nan
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": cm.sum(axis=1)}
    )


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    """Accuracy, balanced accuracy, micro and macro F1 (what `fit` tracks every epoch).

    Like scikit-learn's defaults, the averages skip classes absent from labels (balanced
    accuracy) or from labels and predictions alike (macro F1).
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    scores = per_class_scores(cm)
    present = scores["support"] > 0  # sklearn's balanced accuracy ignores absent classes
    accuracy = float(np.trace(cm) / max(cm.sum(), 1))
    return {
        "accuracy": accuracy,
        "balanced_accuracy": float(scores.loc[present, "recall"].mean()) if present.any() else 0.0,
        "micro_f1": accuracy,  # one label per image: micro precision = micro recall = accuracy
        "macro_f1": float(scores["f1"].mean()) if scores["f1"].notna().any() else 0.0,
    }


def f1_table(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], column: str = "F1"
) -> pd.DataFrame:
    """The seed slides' table: F1 per class, then "micro avg" and "macro avg" rows."""
    cm = confusion_matrix(y_true, y_pred, len(class_names))
    f1 = per_class_scores(cm)["f1"].to_numpy()
    scores = classification_scores(y_true, y_pred, len(class_names))
    index = [*class_names, "micro avg", "macro avg"]
    values = [*f1, scores["micro_f1"], scores["macro_f1"]]
    return pd.DataFrame({column: values}, index=index).round(2)


def with_reference(
    ours: pd.DataFrame, reference: Mapping[str, Mapping[str, float]]
) -> pd.DataFrame:
    """Our table with published columns beside it, e.g. {"seed: all layers": {"akiec": .36, …}}."""
    published = pd.DataFrame(reference).reindex(ours.index)
    return pd.concat([ours, published], axis=1)


def auc(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Area under the ROC curve: binary from the positive-class column, else one-vs-rest macro."""
    y_true, probs = np.asarray(y_true).reshape(-1), np.asarray(probs)
    if probs.ndim == 2 and probs.shape[1] == 2:
        return float(roc_auc_score(y_true, probs[:, 1]))
    if probs.ndim == 1:
        return float(roc_auc_score(y_true, probs))
    return float(roc_auc_score(y_true, probs, multi_class="ovr", labels=np.arange(probs.shape[1])))


def sensitivity_specificity(y_true: np.ndarray, y_pred: np.ndarray, positive: int = 1):
    """(sensitivity, specificity) of a binary decision, `positive` being the disease class."""
    y_true, y_pred = (
        np.asarray(y_true).reshape(-1) == positive,
        np.asarray(y_pred).reshape(-1) == positive,
    )
    sensitivity = float((y_true & y_pred).sum() / max(y_true.sum(), 1))
    specificity = float((~y_true & ~y_pred).sum() / max((~y_true).sum(), 1))
    return sensitivity, specificity


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Per confidence bin: mean confidence, accuracy and count (the reliability diagram's data)."""
    probs, labels = np.asarray(probs), np.asarray(labels).reshape(-1)
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = [
        {
            "bin": f"{b / bins:.2f}-{(b + 1) / bins:.2f}",
            "confidence": confidence[which == b].mean(),
            "accuracy": (predicted == labels)[which == b].mean(),
            "count": int((which == b).sum()),
        }
        for b in range(bins)
        if (which == b).any()
    ]
    return pd.DataFrame(rows).set_index("bin")


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over the bins."""
    table = reliability(probs, labels, bins)
    gaps = (table["confidence"] - table["accuracy"]).abs()
    return float((gaps * table["count"]).sum() / table["count"].sum())


def threshold_for_sensitivity(labels: np.ndarray, scores: np.ndarray, sensitivity: float) -> float:
    """The highest threshold on `scores` whose sensitivity on these labels is at least the target.

    Choose it on validation data and apply it to the test set, never the other way round.
    """
    positives = np.sort(np.asarray(scores)[np.asarray(labels).reshape(-1) == 1])[::-1]
    if len(positives) == 0:
        raise ValueError("No positive example: a sensitivity cannot be reached or measured.")
    needed = int(np.ceil(sensitivity * len(positives) - 1e-9))  # 0.55 × 100 is 55, not 56
    return float(positives[max(needed, 1) - 1])


Metric = Callable[[np.ndarray, np.ndarray], float] | str


def _macro_f1_batch(cm: np.ndarray) -> np.ndarray:
    """Macro F1 of each (K, K) matrix in a stack, over classes true or predicted (sklearn's)."""
    seen = cm.sum(axis=-1) + cm.sum(axis=-2)  # 2 tp + fp + fn
    f1 = _safe_divide(2 * np.diagonal(cm, axis1=-2, axis2=-1), seen)
    return f1.sum(axis=-1) / (seen > 0).sum(axis=-1)


def _balanced_accuracy_batch(cm: np.ndarray) -> np.ndarray:
    """Balanced accuracy of each (K, K) matrix in a stack, over classes in y_true (sklearn's)."""
    support = cm.sum(axis=-1)
    recall = _safe_divide(np.diagonal(cm, axis1=-2, axis2=-1), support)
    return recall.sum(axis=-1) / (support > 0).sum(axis=-1)


FAST_METRICS = {"macro_f1": _macro_f1_batch, "balanced_accuracy": _balanced_accuracy_batch}


def _codes(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Labels of any kind as class numbers 0..K-1 over the classes true or predicted."""
    classes, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    codes = codes.reshape(-1)
    return codes[: len(y_true)], codes[len(y_true) :], len(classes)


def _checked(y_true, y_pred, groups, n_resamples: int):
    """Flat labels and group numbers 0..G-1 (one group per image by default), or a ValueError."""
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions.")
    if len(y_true) == 0:
        raise ValueError("No test images: there is nothing to resample.")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, not {n_resamples}.")
    groups = np.arange(len(y_true)) if groups is None else np.asarray(groups).reshape(-1)
    if len(groups) != len(y_true):
        raise ValueError(f"{len(groups)} group ids for {len(y_true)} images.")
    return y_true, y_pred, np.unique(groups, return_inverse=True)[1].reshape(-1)


def _picks(n_groups: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The groups each resample draws with replacement, in chunks of (resamples, n_groups)."""
    rng, size = np.random.default_rng(seed), max(1, 2**20 // n_groups)  # chunks of ~8 MB
    for start in range(0, n_resamples, size):
        yield rng.integers(0, n_groups, (min(size, n_resamples - start), n_groups))


def bootstrap_indices(
    n_items: int, *, n_resamples: int = 2000, seed: int = 0, groups=None
) -> Iterator[np.ndarray]:
    """The rows of each resample: n_items drawn, or every member of as many groups drawn."""
    _, _, group_of = _checked(np.zeros(n_items), np.zeros(n_items), groups, n_resamples)
    order, sizes = np.argsort(group_of, kind="stable"), np.bincount(group_of)
    starts = np.cumsum(sizes) - sizes  # where each group's members begin in `order`
    for chunk in _picks(len(sizes), n_resamples, seed):
        for picked in chunk:
            ends = np.cumsum(sizes[picked])
            offsets = np.repeat(starts[picked] - ends + sizes[picked], sizes[picked])
            yield order[offsets + np.arange(ends[-1])]


def bootstrap_distribution(
    y_true, y_pred, metric: Metric, *, n_resamples: int = 2000, seed: int = 0, groups=None
) -> np.ndarray:
    """The metric on each resample of bootstrap_indices; "macro_f1" etc. by confusion matrices."""
    y_true, y_pred, group_of = _checked(y_true, y_pred, groups, n_resamples)
    if callable(metric):
        rows = bootstrap_indices(len(y_true), n_resamples=n_resamples, seed=seed, groups=groups)
        return np.array([metric(y_true[i], y_pred[i]) for i in rows], dtype=float)
    if metric not in FAST_METRICS:
        raise ValueError(f"Unknown metric {metric!r}: pass a callable or one of {[*FAST_METRICS]}.")
    true_codes, pred_codes, k = _codes(y_true, y_pred)
    n_groups = int(group_of.max()) + 1
    cells = group_of * k * k + true_codes * k + pred_codes
    group_cm = np.bincount(cells, minlength=n_groups * k * k).reshape(n_groups, k * k) * 1.0
    values = []
    for chunk in _picks(n_groups, n_resamples, seed):  # how often each resample draws each group
        flat = (np.arange(len(chunk))[:, None] * n_groups + chunk).reshape(-1)
        counts = np.bincount(flat, minlength=chunk.size).reshape(chunk.shape)
        values.append(FAST_METRICS[metric]((counts @ group_cm).reshape(-1, k, k)))
    return np.concatenate(values)


def _percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central `level` quantiles, interpolated linearly (scipy.stats.bootstrap's)."""
    low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def bootstrap_interval(
    y_true,
    y_pred,
    metric: Metric,
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
    groups=None,
) -> tuple[float, float, float]:
    """(point estimate, low, high): a percentile bootstrap over test images, or whole groups."""
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, not {level}.")
    values = bootstrap_distribution(
        y_true, y_pred, metric, n_resamples=n_resamples, seed=seed, groups=groups
    )
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if callable(metric):
        point = metric(y_true, y_pred)
    else:
        true_codes, pred_codes, k = _codes(y_true, y_pred)
        point = FAST_METRICS[metric](confusion_matrix(true_codes, pred_codes, k)[None])[0]
    return (float(point), *_percentile_interval(values, level))


def with_intervals(
    y_true, y_pred, *, groups=None, name: str = "ours", n_resamples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """One row of "0.62 (0.55–0.69)": macro F1 and balanced accuracy with 95% intervals."""
    row = {}
    for label, metric in (("macro F1", "macro_f1"), ("balanced accuracy", "balanced_accuracy")):
        point, low, high = bootstrap_interval(
            y_true, y_pred, metric, n_resamples=n_resamples, seed=seed, groups=groups
        )
        row[label] = f"{point:.2f} ({low:.2f}–{high:.2f})"
    return pd.DataFrame(row, index=[name])
