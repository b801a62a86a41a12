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


def near_duplicates(codes: np.ndarray, threshold: float = 0.98, chunk: int = 1024) -> pd.DataFrame:
    """Pairs of images whose CNN codes point the same way (cosine similarity ≥ threshold)."""
    unit = codes / np.linalg.norm(codes, axis=1, keepdims=True).clip(1e-12)
    found = []
    for start in range(0, len(unit), chunk):  # row blocks: memory stays chunk × N, not N × N
        similarity = unit[start : start + chunk] @ unit.T
        rows, cols = np.nonzero(similarity >= threshold)
        later = cols > rows + start  # each pair once, never an image with itself
        found.append((rows[later] + start, cols[later], similarity[rows[later], cols[later]]))
    first, second, values = (np.concatenate(parts) for parts in zip(*found, strict=True))
    pairs = pd.DataFrame({"first": first, "second": second, "similarity": values})
    return pairs.sort_values("similarity", ascending=False).reset_index(drop=True)
