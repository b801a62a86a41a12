"""Classification metrics in the seed's table form, computed from a confusion matrix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
