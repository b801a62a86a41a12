"""Error analysis: every mistake in a table, and the images worth a second look."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def mistakes(probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """One row per misclassified image (index, truth, prediction, confidence), surest first."""
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    table = pd.DataFrame(
        {
            "index": wrong,
            "true": np.asarray(class_names)[labels[wrong]],
            "predicted": np.asarray(class_names)[predicted[wrong]],
            "confidence": probs[wrong, predicted[wrong]],
            "p(true)": probs[wrong, labels[wrong]],
        }
    )
    return table.sort_values("confidence", ascending=False).reset_index(drop=True)


def likely_label_errors(
    probs: np.ndarray, labels: np.ndarray, confidence: float = 0.9
) -> np.ndarray:
    """Images the model contradicts with high confidence: candidates for a wrong label.

    Not proof: a confident model can be confidently wrong. They are where a human looks first.
    """
    predicted = probs.argmax(axis=1)
    return np.flatnonzero((predicted != labels) & (probs.max(axis=1) >= confidence))


def near_duplicates(codes: np.ndarray, threshold: float = 0.98) -> pd.DataFrame:
    """Pairs of images whose CNN codes point the same way (cosine similarity ≥ threshold)."""
    unit = codes / np.linalg.norm(codes, axis=1, keepdims=True).clip(1e-12)
    similarity = unit @ unit.T
    first, second = np.nonzero(np.triu(similarity >= threshold, k=1))
    pairs = pd.DataFrame(
        {"first": first, "second": second, "similarity": similarity[first, second]}
    )
    return pairs.sort_values("similarity", ascending=False).reset_index(drop=True)
