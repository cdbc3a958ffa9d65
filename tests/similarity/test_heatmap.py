"""Heatmap pictures: colours by hand, and every bad argument refused."""

import numpy as np
import pytest

from keras_heuristics.similarity import heatmap
from keras_heuristics.similarity.heatmap import heatmap_figure
from keras_heuristics.similarity.heatmap import heatmap_image


def test_image_colours_and_blocks():
    image = heatmap_image([[0.0, 1.0], [np.nan, 0.5]], cell=3)
    assert image.shape == (6, 6, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[0, 0], [68, 1, 84])  # viridis(0)
    np.testing.assert_array_equal(image[2, 5], [253, 231, 37])  # viridis(1)
    np.testing.assert_array_equal(image[5, 0], [128, 128, 128])  # NaN
    np.testing.assert_array_equal(image[3, 3], [33, 144, 141])  # viridis(.5)
    # vmin/vmax map linearly: 5 in [0, 10] is the middle colour.
    np.testing.assert_array_equal(
        heatmap_image([[5.0]], vmin=0.0, vmax=10.0, cell=1)[0, 0],
        [33, 144, 141],
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"cell": 0}, ValueError, "`cell` must be >= 1"),
        ({"cell": -3}, ValueError, "`cell` must be >= 1"),
        ({"cell": 1.5}, TypeError, "`cell` must be an integer"),
        ({"cell": "a"}, TypeError, "`cell` must be an integer"),
        ({"cell": True}, TypeError, "`cell` must be an integer"),
        ({"cell": 10**5}, ValueError, "`cell` is too large"),
        ({"vmin": 1.0, "vmax": 0.0}, ValueError, "vmin < vmax"),
        ({"vmin": 0.5, "vmax": 0.5}, ValueError, "vmin < vmax"),
        ({"vmin": float("nan")}, ValueError, "`vmin` must be finite"),
        ({"vmax": float("inf")}, ValueError, "`vmax` must be finite"),
        ({"vmax": "1"}, TypeError, "`vmax`"),
    ],
)
def test_image_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        heatmap_image(np.eye(3), **kwargs)


def test_image_size_limit_is_exact(monkeypatch):
    assert heatmap.MAX_PIXELS == 2**26  # the documented limit
    monkeypatch.setattr(heatmap, "MAX_PIXELS", 100)
    assert heatmap_image(np.zeros((2, 2)), cell=5).shape == (10, 10, 3)
    with pytest.raises(ValueError, match="`cell` is too large"):
        heatmap_image(np.zeros((2, 2)), cell=6)


@pytest.mark.parametrize("matrix", [np.ones(3), np.ones((0, 2)), 1.0])
def test_image_matrix_must_be_2d(matrix):
    with pytest.raises(ValueError, match="`matrix` must be a non-empty 2-D"):
        heatmap_image(matrix)


@pytest.mark.parametrize("matrix", [None, "ab", [["a", "b"]]])
def test_image_matrix_must_hold_numbers(matrix):
    with pytest.raises(TypeError, match="`matrix`"):
        heatmap_image(matrix)


def test_figure_labels_and_ticks():
    from matplotlib import pyplot as plt

    figure = heatmap_figure(np.eye(2, 3), ["a", "b"], ["c", "d", "e"])
    (ax, _) = figure.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c", "d", "e"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    plt.close(figure)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((np.eye(2), ["a"], ["c", "d"]), {}, ValueError, "`row_labels`"),
        ((np.eye(2), ["a", "b"], ["c"]), {}, ValueError, "`col_labels`"),
        ((np.eye(2), None, ["c", "d"]), {}, TypeError, "`row_labels`"),
        ((np.eye(2), ["a", "b"], "cd"), {}, TypeError, "`col_labels`"),
        ((np.ones(2), ["a"], ["c", "d"]), {}, ValueError, "`matrix`"),
        ((None, ["a"], ["c"]), {}, TypeError, "`matrix`"),
        (
            (np.eye(2), ["a", "b"], ["c", "d"]),
            {"vmin": 1.0, "vmax": 0.0},
            ValueError,
            "vmin < vmax",
        ),
        (
            (np.eye(2), ["a", "b"], ["c", "d"]),
            {"vmin": float("nan")},
            ValueError,
            "`vmin`",
        ),
    ],
)
def test_figure_argument_errors(args, kwargs, error, match):
    from matplotlib import pyplot as plt

    before = plt.get_fignums()
    with pytest.raises(error, match=match):
        heatmap_figure(*args, **kwargs)
    assert plt.get_fignums() == before  # no figure left open


@pytest.mark.parametrize(
    "shape, cell",
    [((20, 20), 12), ((200, 400), 7), ((2048, 2048), 1), ((4096, 2048), 0)],
)
def test_fitting_cell_keeps_the_picture_within_the_budget(shape, cell):
    # the largest cell c <= 12 with rows * cols * c^2 <= 2**22 pixels
    # (200 x 400 cells: 7^2 * 80,000 = 3.9e6, 8^2 * 80,000 = 5.1e6); 0 when
    # not even one pixel a cell fits
    assert heatmap.fitting_cell(shape) == cell
    if cell:
        assert shape[0] * shape[1] * cell**2 <= 2**22
        assert cell == 12 or shape[0] * shape[1] * (cell + 1) ** 2 > 2**22


def test_figure_signed_range_diverging_and_centred():
    # The dashboards' convention for signed data (a difference of two
    # matrices): RdBu reversed, white at 0, symmetric range.
    from matplotlib import pyplot as plt

    figure = heatmap_figure(
        np.array([[-0.05, 0.02]]), ["a"], ["b", "c"], vmin=-0.05, vmax=0.02
    )
    image = figure.axes[0].images[0]
    assert image.get_cmap().name == "RdBu_r"
    assert image.get_clim() == (-0.05, 0.05)
    white = np.array(image.to_rgba(0.0)[:3])
    np.testing.assert_allclose(white, 0.97, atol=0.01)
    # Labels of 8 points: 11 pixels at 100 dpi, not 6.
    sizes = [t.get_fontsize() for t in figure.axes[0].get_xticklabels()]
    assert min(sizes) >= 8
    plt.close(figure)
    figure = heatmap_figure(np.eye(2), ["a", "b"], ["c", "d"])
    assert figure.axes[0].images[0].get_cmap().name == "viridis"
    plt.close(figure)
