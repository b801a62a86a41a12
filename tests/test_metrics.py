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


# Bootstrap intervals. HAM10000's class shares: df and vasc are ~1% of the test images.
HAM_SHARES = [0.033, 0.051, 0.11, 0.011, 0.111, 0.67, 0.014]


def _ham_like(n: int, seed: int, accuracy: float = 0.75):
    """Imbalanced 7-class labels and predictions right `accuracy` of the time, else random."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice(7, n, p=HAM_SHARES)
    y_pred = np.where(rng.random(n) < accuracy, y_true, rng.choice(7, n, p=HAM_SHARES))
    return y_true, y_pred


def _macro_f1(y_true, y_pred):
    return sk.f1_score(y_true, y_pred, average="macro", zero_division=0)


SKLEARN = {"macro_f1": _macro_f1, "balanced_accuracy": sk.balanced_accuracy_score}


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("name", ["macro_f1", "balanced_accuracy"])
@pytest.mark.parametrize("grouped", [False, True])
def test_fast_paths_equal_sklearn_on_every_resample(name, grouped):
    y_true, y_pred = _ham_like(80, seed=3)  # small: rare classes drop out of many resamples
    groups = np.arange(80) // 3 if grouped else None
    kwargs = {"n_resamples": 200, "seed": 5, "groups": groups}
    rows = list(metrics.bootstrap_indices(80, **kwargs))
    expected = [SKLEARN[name](y_true[i], y_pred[i]) for i in rows]
    np.testing.assert_allclose(
        metrics.bootstrap_distribution(y_true, y_pred, name, **kwargs), expected, rtol=1e-12
    )
    np.testing.assert_allclose(  # a callable is run on exactly the same resamples
        metrics.bootstrap_distribution(y_true, y_pred, SKLEARN[name], **kwargs), expected
    )
    lacking = [set(range(7)) - set(y_true[i]) for i in rows]
    assert sum(bool(absent) for absent in lacking) > 50  # the zero-division cases were exercised
    point = metrics.bootstrap_interval(y_true, y_pred, name, **kwargs)[0]
    assert point == pytest.approx(SKLEARN[name](y_true, y_pred), rel=1e-12)


def _one_hot_scores(y_true, y_pred, axis=-1):
    """(macro F1, balanced accuracy) along the last axis by one-hot sums: scipy's statistic."""
    true, pred = y_true[..., None] == np.arange(7), y_pred[..., None] == np.arange(7)
    tp, support = (true & pred).sum(-2), true.sum(-2)
    seen = support + pred.sum(-2)
    f1 = np.where(seen > 0, 2 * tp / np.maximum(seen, 1), 0).sum(-1) / (seen > 0).sum(-1)
    recall = np.where(support > 0, tp / np.maximum(support, 1), 0)
    return f1, recall.sum(-1) / (support > 0).sum(-1)


@pytest.mark.parametrize("which, name", [(0, "macro_f1"), (1, "balanced_accuracy")])
def test_percentile_interval_agrees_with_scipy_bootstrap(which, name):
    stats = pytest.importorskip("scipy.stats")
    y_true, y_pred = _ham_like(500, seed=7)
    assert _one_hot_scores(y_true, y_pred)[which] == pytest.approx(SKLEARN[name](y_true, y_pred))
    result = stats.bootstrap(
        (y_true, y_pred),
        lambda t, p, axis=-1: _one_hot_scores(t, p)[which],
        paired=True,
        vectorized=True,
        n_resamples=10_000,
        batch=1000,
        method="percentile",
        rng=np.random.default_rng(1),
    )
    scipy_ci = tuple(result.confidence_interval)
    # Same quantile rule: on scipy's own resamples our percentile step gives scipy's interval.
    ours_on_theirs = metrics._percentile_interval(result.bootstrap_distribution, 0.95)
    np.testing.assert_allclose(ours_on_theirs, scipy_ci, rtol=1e-12)
    # Different random streams: each 2.5% quantile of B = 10,000 resamples has a Monte Carlo
    # s.d. of sqrt(.025 × .975 / B) / φ(1.96) × σ ≈ 0.027 σ (σ, the bootstrap s.d., is ~0.037
    # here), so two independent ends differ with s.d. ≈ 0.0014; allow 4.5 of those (≈ 0.006).
    tolerance = 4.5 * np.sqrt(2 * 0.025 * 0.975 / 10_000) / 0.0584 * result.standard_error
    ours = metrics.bootstrap_interval(y_true, y_pred, name, n_resamples=10_000)
    np.testing.assert_allclose(ours[1:], scipy_ci, atol=tolerance)
    # ... yet tight enough to catch a wrong level: a 90% interval misses scipy's 95% one.
    ninety = metrics.bootstrap_interval(y_true, y_pred, name, n_resamples=10_000, level=0.9)
    assert np.abs(np.subtract(ninety[1:], scipy_ci)).max() > 1.5 * tolerance


def test_group_bootstrap_keeps_lesions_whole_and_is_wider():
    rng = np.random.default_rng(11)
    sizes = rng.integers(1, 9, 60)  # 60 lesions of 1 to 8 images each
    lesion = np.repeat(np.arange(60), sizes)
    lesion_true = rng.integers(0, 3, 60)
    lesion_pred = np.where(rng.random(60) < 0.7, lesion_true, (lesion_true + 1) % 3)
    y_true, y_pred = lesion_true[lesion], lesion_pred[lesion]  # a lesion's images agree
    for rows in metrics.bootstrap_indices(len(lesion), n_resamples=50, groups=lesion):
        drawn = np.bincount(rows, minlength=len(lesion))
        for g in range(60):  # each lesion drawn k times brings each of its images k times
            assert len(set(drawn[lesion == g])) == 1
        times = drawn[np.searchsorted(lesion, np.arange(60))]  # via each lesion's first image
        assert times.sum() == 60 and len(rows) == (times * sizes).sum()  # 60 lesions drawn
    for name in ("macro_f1", "balanced_accuracy"):
        _, low, high = metrics.bootstrap_interval(y_true, y_pred, name)
        _, g_low, g_high = metrics.bootstrap_interval(y_true, y_pred, name, groups=lesion)
        assert g_high - g_low > 1.5 * (high - low)  # ~√(mean lesion size) wider


def test_group_ids_may_be_strings_and_labels_class_names():
    names = np.array(["df", "nv", "vasc"])
    y_true, y_pred = names[[0, 1, 1, 2, 2, 1]], names[[0, 1, 2, 2, 2, 1]]
    groups = ["HAM_1", "HAM_2", "HAM_2", "HAM_3", "HAM_3", "HAM_4"]
    point, low, high = metrics.bootstrap_interval(y_true, y_pred, "macro_f1", groups=groups)
    assert point == pytest.approx(_macro_f1(y_true, y_pred)) and low <= point <= high


@pytest.mark.parametrize(
    "change, message",
    [
        ({"y_pred": [0, 1]}, "3 true labels but 2 predictions"),
        ({"y_true": [], "y_pred": []}, "No test images"),
        ({"groups": [0, 0]}, "2 group ids for 3 images"),
        ({"level": 1.0}, "level must lie strictly between 0 and 1"),
        ({"level": 0}, "level must lie strictly between 0 and 1"),
        ({"n_resamples": 0}, "n_resamples must be at least 1"),
        ({"metric": "macro_F1"}, "Unknown metric 'macro_F1'"),
    ],
)
def test_bad_input_is_a_clear_error(change, message):
    arguments = {"y_true": [0, 1, 1], "y_pred": [0, 1, 0], "metric": "macro_f1", **change}
    with pytest.raises(ValueError, match=message):
        metrics.bootstrap_interval(**arguments)


def test_bootstrap_is_deterministic_for_a_seed():
    y_true, y_pred = _ham_like(300, seed=2)
    first = metrics.bootstrap_interval(y_true, y_pred, "macro_f1", seed=4)
    assert metrics.bootstrap_interval(y_true, y_pred, "macro_f1", seed=4) == first
    assert metrics.bootstrap_interval(y_true, y_pred, "macro_f1", seed=5) != first
    again = metrics.bootstrap_indices(300, n_resamples=3, seed=4)
    for a, b in zip(metrics.bootstrap_indices(300, n_resamples=3, seed=4), again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_with_intervals_is_one_row_to_show_beside_f1_table():
    y_true, y_pred = _ham_like(400, seed=9)
    row = metrics.with_intervals(y_true, y_pred, name="all layers")
    assert list(row.index) == ["all layers"]
    assert list(row.columns) == ["macro F1", "balanced accuracy"]
    point, low, high = metrics.bootstrap_interval(y_true, y_pred, "macro_f1")
    assert row.loc["all layers", "macro F1"] == f"{point:.2f} ({low:.2f}–{high:.2f})"
    assert row.loc["all layers", "macro F1"].startswith(f"{_macro_f1(y_true, y_pred):.2f} (")
