import numpy as np
import pytest
from sklearn import metrics as sk

from course_utils import metrics

RNG = np.random.default_rng(0)
Y_TRUE = RNG.integers(0, 7, 300)
Y_PRED = np.where(RNG.random(300) < 0.6, Y_TRUE, RNG.integers(0, 7, 300))
Y_PRED[Y_PRED == 3] = 5  # class 3 is never predicted: its precision is 0/0


def test_confusion_matrix_matches_sklearn():
    np.testing.assert_array_equal(
        metrics.confusion_matrix(Y_TRUE, Y_PRED, 7),
        sk.confusion_matrix(Y_TRUE, Y_PRED, labels=range(7)),
    )


def test_per_class_scores_match_sklearn():
    scores = metrics.per_class_scores(metrics.confusion_matrix(Y_TRUE, Y_PRED, 7))
    p, r, f, s = sk.precision_recall_fscore_support(
        Y_TRUE, Y_PRED, labels=range(7), zero_division=0
    )
    np.testing.assert_allclose(scores["precision"], p)
    np.testing.assert_allclose(scores["recall"], r)
    np.testing.assert_allclose(scores["f1"], f)
    np.testing.assert_array_equal(scores["support"], s)


@pytest.mark.parametrize("absent_class", [False, True])
def test_summary_scores_match_sklearn(absent_class):
    y_true, y_pred = Y_TRUE.copy(), Y_PRED.copy()
    if absent_class:  # class 6 is neither true nor predicted anywhere
        y_true[y_true == 6], y_pred[y_pred == 6] = 0, 0
    scores = metrics.classification_scores(y_true, y_pred, 7)
    assert scores["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert scores["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(y_true, y_pred))
    f1 = {
        avg: sk.f1_score(y_true, y_pred, average=avg, zero_division=0) for avg in ("micro", "macro")
    }
    assert scores["micro_f1"] == pytest.approx(f1["micro"])
    assert scores["macro_f1"] == pytest.approx(f1["macro"])


def test_f1_table_has_the_seed_slides_form():
    names = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
    table = metrics.f1_table(Y_TRUE, Y_PRED, names, column="ours")
    assert list(table.index) == [*names, "micro avg", "macro avg"] and list(table.columns) == [
        "ours"
    ]
    expected = sk.f1_score(Y_TRUE, Y_PRED, average=None, zero_division=0)
    np.testing.assert_allclose(table["ours"].iloc[:7], expected.round(2))
    assert table.loc["df", "ours"] == 0.0
    assert table.loc["macro avg", "ours"] == round(sk.f1_score(Y_TRUE, Y_PRED, average="macro"), 2)


def test_reference_columns_sit_beside_ours():
    table = metrics.f1_table([0, 1, 1], [0, 1, 0], ["normal", "pneumonia"], column="ours")
    both = metrics.with_reference(
        table, {"seed": {"normal": 0.91, "pneumonia": 0.97, "micro avg": 0.95, "macro avg": 0.94}}
    )
    assert list(both.columns) == ["ours", "seed"] and both.loc["macro avg", "seed"] == 0.94


def test_auc_matches_sklearn_binary_and_multiclass():
    y = RNG.integers(0, 2, 200)
    scores = np.clip(y * 0.3 + RNG.random(200) * 0.7, 0, 1)
    probs = np.stack([1 - scores, scores], axis=1)
    assert metrics.auc(y, probs) == pytest.approx(sk.roc_auc_score(y, scores))
    assert metrics.auc(y, scores) == pytest.approx(sk.roc_auc_score(y, scores))
    logits = RNG.normal(size=(300, 7)) + np.eye(7)[Y_TRUE] * 1.5
    multi = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert metrics.auc(Y_TRUE, multi) == pytest.approx(
        sk.roc_auc_score(Y_TRUE, multi, multi_class="ovr")
    )


def test_sensitivity_and_specificity_are_recalls_of_each_class():
    y_true, y_pred = Y_TRUE % 2, Y_PRED % 2
    sensitivity, specificity = metrics.sensitivity_specificity(y_true, y_pred)
    assert sensitivity == pytest.approx(sk.recall_score(y_true, y_pred, pos_label=1))
    assert specificity == pytest.approx(sk.recall_score(y_true, y_pred, pos_label=0))


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="3 true labels but 2 predictions"):
        metrics.confusion_matrix([0, 1, 1], [0, 1], 2)


def test_uint8_labels_do_not_overflow_and_absent_classes_are_skipped():
    y = np.array([15, 16, 16, 3], dtype=np.uint8)
    cm = metrics.confusion_matrix(y, y, 20)
    assert cm[16, 16] == 2 and cm.sum() == 4
    scores = metrics.classification_scores(y, y, 20)
    assert scores["macro_f1"] == 1.0 == sk.f1_score(y, y, average="macro")
    table = metrics.f1_table([0, 0, 1], [0, 0, 1], ["a", "b", "c"])
    assert np.isnan(table.loc["c", "F1"]) and table.loc["macro avg", "F1"] == 1.0
