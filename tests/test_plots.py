import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_utils import plots
from course_utils.train import History


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(values, monitor="val_accuracy"):
    rows = [{"epoch": i + 1, "val_accuracy": v} for i, v in enumerate(values)]
    best = int(np.argmax(values)) + 1
    return History(monitor=monitor, epochs=rows, best_epoch=best)


def test_curves_of_several_runs_share_one_axis():
    ax = plots.plot_curves({"random": _history([0.3, 0.4]), "ImageNet": _history([0.6, 0.8, 0.7])})
    lines = [line for line in ax.get_lines() if line.get_label() in ("random", "ImageNet")]
    assert [list(line.get_ydata()) for line in lines] == [[0.3, 0.4], [0.6, 0.8, 0.7]]
    stars = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert [tuple(s.get_xydata()[0]) for s in stars] == [(2, 0.4), (2, 0.8)]  # best epochs
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "val accuracy" and ax.get_title()


def test_class_distribution_counts_and_shares():
    ax = plots.plot_class_distribution(
        np.array([0, 1, 1, 1]).reshape(-1, 1), ["normal", "pneumonia"]
    )
    assert [bar.get_height() for bar in ax.patches] == [1, 3]
    assert [t.get_text() for t in ax.texts] == ["1\n25%", "3\n75%"]
    assert ax.get_title() == "Images per class" and ax.get_ylabel() == "images"


def test_image_grid_titles_labels_and_marks_mistakes():
    images = np.zeros((5, 8, 8, 3), np.uint8)
    fig = plots.show_images(
        images,
        [0, 1, 0, 1, 0],
        ["a", "b"],
        predictions=np.array([0, 0, 0, 1, 1]),
        cols=3,
        title="grid",
    )
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[1] == "b\n→ a" and len(titles) == 5 and fig._suptitle.get_text() == "grid"
    colours = [ax.title.get_color() for ax in fig.axes[:5]]
    assert colours == ["green", "red", "green", "green", "red"]
    grey = plots.show_images(np.zeros((2, 8, 8), np.uint8), [0, 1], ["a", "b"])
    assert grey.axes[0].images[0].get_cmap().name == "gray"


def test_confusion_matrix_rows_sum_to_one():
    ax = plots.plot_confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ["normal", "pneumonia"])
    cells = [float(t.get_text()) for t in ax.texts]
    assert cells == [0.5, 0.5, pytest.approx(0.33), pytest.approx(0.67)]
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true"
    counts = plots.plot_confusion_matrix([0, 0, 1], [0, 1, 1], ["a", "b"], normalize=False)
    assert [t.get_text() for t in counts.texts] == ["1", "1", "0", "1"]


def test_filters_are_drawn_one_per_axis():
    fig = plots.show_filters(torch.randn(10, 3, 5, 5), n=6, cols=4, title="conv1")
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 6 and drawn[0].images[0].get_array().shape == (5, 5, 3)
    fig = plots.show_filters(torch.randn(4, 16, 3, 3))  # many input channels: their mean, in grey
    assert fig.axes[0].images[0].get_array().shape == (3, 3)


def test_class_examples_one_row_per_class():
    images = np.zeros((10, 8, 8), np.uint8)
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1, 2, 0])
    fig = plots.show_class_examples(images, labels, ["a", "b", "c"], per_class=3)
    assert len(fig.axes) == 9
    assert [ax.get_ylabel() for ax in fig.axes[::3]] == ["a\n(4)", "b\n(5)", "c\n(1)"]
    assert [len(ax.images) for ax in fig.axes[6:]] == [1, 0, 0]  # class c has one image
