"""The dashboards on hard data: uneven grids, NaN and infinity, signed
differences, runs logged at different steps, long names, large series,
new data while the page is open, shared links and downloads.

Each test checks what the page shows against a reference computed here
from the logged values: the pixel of a data coordinate, the colour of a
value in the colour map's anchors, the numbers of a downloaded file.
Skipped like `test_browser.py` where Chromium is missing.
"""

import json
import os
import time

import numpy as np
import pytest

from tests.tensorboard_plugins import browser
from tests.tensorboard_plugins import logs

pytestmark = [pytest.mark.slow, pytest.mark.only_backends("jax")]

MATRIX_TAG = "layer_similarity/student_vs_teacher"
LAYERS_TAG = "layer_similarity/self_vs_final"
# matplotlib's viridis and RdBu reversed, sampled at the anchors the
# dashboards interpolate between (matplotlib.colormaps[name](t) * 255).
VIRIDIS = np.array(
    [
        [68, 1, 84],
        [72, 40, 120],
        [62, 73, 137],
        [49, 104, 142],
        [38, 130, 142],
        [31, 158, 137],
        [53, 183, 121],
        [110, 206, 88],
        [181, 222, 43],
        [253, 231, 37],
    ],
    float,
)
RDBU_R = np.array(
    [
        [5, 48, 97],
        [33, 102, 172],
        [67, 147, 195],
        [146, 197, 222],
        [209, 229, 240],
        [247, 247, 247],
        [253, 219, 199],
        [244, 165, 130],
        [214, 96, 77],
        [178, 24, 43],
        [103, 0, 31],
    ],
    float,
)


def _map(anchors, t):
    x = np.clip(t, 0, 1) * (len(anchors) - 1)
    i = min(len(anchors) - 2, int(np.floor(x)))
    return anchors[i] + (x - i) * (anchors[i + 1] - anchors[i])


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    reason = browser.missing()
    if reason:
        if os.environ.get("KERAS_HEURISTICS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"End-to-end browser test required, but {reason}.")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("dashboards")
    written = logs.write_logdir(root / "logs")
    written.update(logs.write_defect_logdir(root / "logs"))
    downloads = root / "downloads"
    downloads.mkdir()
    with browser.tensorboard(root / "logs", reload_interval=1) as url:
        with browser.chromium(root / "profile") as driver:
            driver.execute_cdp_cmd(
                "Browser.setDownloadBehavior",
                {"behavior": "allow", "downloadPath": str(downloads)},
            )
            yield driver, url, written, root


def _open(driver, url, plugin, **state):
    browser.open_dashboard(driver, url, plugin, state=state)


def _data(driver, element):
    return driver.execute_script(
        "return Object.assign({}, arguments[0].dataset)", element
    )


def _pixel(driver, canvas, x, y):
    """RGB of the canvas at CSS pixel (x, y)."""
    return driver.execute_script(
        "const c = arguments[0]; const r = c.width / c.clientWidth;"
        "return Array.from(c.getContext('2d').getImageData("
        "Math.floor(arguments[1] * r), Math.floor(arguments[2] * r), 1, 1)"
        ".data).slice(0, 3);",
        canvas,
        x,
        y,
    )


def _pixels(driver, canvas, points):
    """RGB of the canvas at each CSS pixel (x, y) of `points`, in one call."""
    return driver.execute_script(
        "const c = arguments[0]; const r = c.width / c.clientWidth;"
        "const ctx = c.getContext('2d');"
        "return arguments[1].map(([x, y]) => Array.from(ctx.getImageData("
        "Math.floor(x * r), Math.floor(y * r), 1, 1).data).slice(0, 3));",
        canvas,
        [[float(x), float(y)] for x, y in points],
    )


def _hover(driver, canvas, x, y):
    """Moves the pointer to CSS pixel (x, y) of a canvas; returns the
    tooltip's dataset."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    size = canvas.size
    ActionChains(driver).move_to_element_with_offset(
        canvas,
        int(round(x - size["width"] / 2)),
        int(round(y - size["height"] / 2)),
    ).perform()
    tooltip = canvas.find_element(By.XPATH, "../div[@class='kh-tooltip']")
    assert tooltip.is_displayed()
    return _data(driver, tooltip), tooltip.text


def _select(driver, name, value):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(
        driver.find_element(By.CSS_SELECTOR, f"select[name='{name}']")
    ).select_by_value(value)


def _pair(run, tag):
    return json.dumps([run, tag], separators=(",", ":"))


def _edges(c):
    """Cell edges of grid nodes: midpoints, outer cells symmetric."""
    c = np.asarray(c, float)
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate(
        [[c[0] - (c[1] - c[0]) / 2], mid, [c[-1] + (c[-1] - c[-2]) / 2]]
    )


def _text_left(driver, element, needle):
    """Left pixel of the first occurrence of `needle` in the element."""
    return driver.execute_script(
        """
        const walker = document.createTreeWalker(arguments[0], NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          const k = n.data.indexOf(arguments[1]);
          if (k < 0) continue;
          const range = document.createRange();
          range.setStart(n, k);
          range.setEnd(n, k + 1);
          return range.getBoundingClientRect().left;
        }
        return null;
        """,
        element,
        needle,
    )


# 1, 2. Planes on uneven grids, with equal units on both axes.


def test_uneven_plane_cells_values_and_markers(session):
    from selenium.webdriver.common.by import By

    driver, url, written, _ = session
    _open(driver, url, "mode_connectivity", runs='["uneven"]')
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-plane-canvas")
    d = _data(driver, canvas)
    left, top = float(d["left"]), float(d["top"])
    width, height = float(d["plotWidth"]), float(d["plotHeight"])
    ex, ey = _edges(logs.UNEVEN_X), _edges(logs.UNEVEN_Y)

    def pixel_of(x, y):
        return (
            left + (x - ex[0]) / (ex[-1] - ex[0]) * width,
            top + (ey[-1] - y) / (ey[-1] - ey[0]) * height,
        )

    grid = written["uneven"]
    lo, hi = grid.min(), grid.max()
    markers = [pixel_of(-1.0, -0.8), pixel_of(9.8, 1.8)]
    checked = 0
    for i, y in enumerate(logs.UNEVEN_Y):
        for j, x in enumerate(logs.UNEVEN_X):
            px, py = pixel_of(x, y)
            if any(
                abs(px - mx) < 80 and abs(py - my) < 25 for mx, my in markers
            ):
                continue
            colour = _pixel(driver, canvas, px, py)
            expected = _map(VIRIDIS, (grid[i, j] - lo) / (hi - lo))
            np.testing.assert_allclose(colour, expected, atol=2)
            tip, _ = _hover(driver, canvas, px, py)
            assert (int(tip["row"]), int(tip["col"])) == (i, j)
            assert np.float32(tip["value"]) == grid[i, j]
            checked += 1
    assert checked >= 15
    # The start and end markers (white discs) sit on their coordinates.
    for mx, my in markers:
        assert _pixel(driver, canvas, mx, my) == [255, 255, 255]


def test_plane_equal_aspect_ticks_and_titles(session):
    from selenium.webdriver.common.by import By

    driver, url, _, _ = session
    _open(driver, url, "mode_connectivity", runs='["uneven"]')
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-plane-canvas")
    d = _data(driver, canvas)
    ex, ey = _edges(logs.UNEVEN_X), _edges(logs.UNEVEN_Y)
    # One weight-space unit is as long across as it is up.
    ratio = float(d["plotWidth"]) / float(d["plotHeight"])
    assert ratio == pytest.approx((ex[-1] - ex[0]) / (ey[-1] - ey[0]), rel=0.01)
    assert len(d["xTicks"].split(",")) >= 5
    assert len(d["yTicks"].split(",")) >= 2
    # Axis titles: dark text under the tick labels and left of them.
    left, top = float(d["left"]), float(d["top"])
    width, height = float(d["plotWidth"]), float(d["plotHeight"])
    below = _pixels(
        driver,
        canvas,
        [
            (left + width / 2 + dx, top + height + y)
            for dx in range(-60, 60, 2)
            for y in range(22, 40, 2)
        ],
    )
    assert min(sum(p) for p in below) < 200
    beside = _pixels(
        driver,
        canvas,
        [
            (x, top + height / 2 + dy)
            for x in range(4, 20, 2)
            for dy in range(-30, 30, 2)
        ],
    )
    assert min(sum(p) for p in beside) < 200


# 3. NaN and infinity break profiles.


def test_profiles_break_at_nan_and_infinity(session):
    from selenium.webdriver.common.by import By

    driver, url, written, _ = session
    _open(driver, url, "mode_connectivity", runs='["diverged"]')
    t, loss = written["diverged"]
    chart = driver.find_element(
        By.CSS_SELECTOR, "svg.kh-chart[data-metric='loss']"
    )
    d = _data(driver, chart)
    left, right = float(d["left"]), float(d["right"])
    lines = chart.find_elements(By.CSS_SELECTOR, "polyline")
    spans = []
    for line in lines:
        xs = [
            float(p.split(",")[0]) for p in line.get_attribute("points").split()
        ]
        spans.append((min(xs), max(xs), len(xs)))
    finite = np.isfinite(loss)
    # Runs of finite points: t[0..4], t[6], t[9..10].
    assert [n for _, _, n in spans] == [5, 1, 2]
    for k in np.flatnonzero(~finite):
        x = left + t[k] * (right - left)
        assert not any(a < x < b for a, b, _ in spans)
    marks = {
        (
            m.get_attribute("data-special"),
            round(float(m.get_attribute("data-t")), 3),
        )
        for m in chart.find_elements(By.CSS_SELECTOR, ".kh-special")
    }
    assert marks == {("posinf", 0.5), ("nan", 0.7), ("nan", 0.8)}
    # Accuracy is NaN everywhere: said, not drawn as empty axes.
    empty = driver.find_element(By.CSS_SELECTOR, "[data-empty='accuracy']")
    assert "No finite value" in empty.text


# 4. The log scale is a visible toggle and never hides values.


def test_log_scale_is_a_toggle_that_counts_hidden_values(session):
    from selenium.webdriver.common.by import By

    driver, url, written, _ = session
    _open(driver, url, "mode_connectivity", runs='["nonpos"]')
    box = driver.find_element(By.CSS_SELECTOR, ".kh-planes input[name='log']")
    assert box.is_displayed() and not box.is_selected()
    bar = driver.find_element(By.CSS_SELECTOR, ".kh-planes .kh-colourbar")
    assert bar.get_attribute("data-title") == "loss"
    box.click()
    browser.wait_ready(driver)
    grid = written["nonpos"]
    count = int((grid <= 0).sum())
    notice = driver.find_element(
        By.CSS_SELECTOR, ".kh-notice[data-special='nonpos']"
    )
    assert f"{count} of {grid.size}" in notice.text
    legend = driver.find_element(
        By.CSS_SELECTOR, ".kh-specials [data-special='nonpos']"
    )
    assert legend.text.endswith(f": {count}")
    # The cell of 0 is drawn apart from NaN's grey.
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-plane-canvas")
    d = _data(driver, canvas)
    ex, ey = _edges(np.linspace(0, 1, 5)), _edges(np.linspace(0, 1, 4))
    px = float(d["left"]) + (0.25 - ex[0]) / (ex[-1] - ex[0]) * float(
        d["plotWidth"]
    )
    py = float(d["top"]) + (ey[-1] - 1 / 3) / (ey[-1] - ey[0]) * float(
        d["plotHeight"]
    )
    assert _pixel(driver, canvas, px, py) == [255, 140, 0]


# 5. Signed data: a diverging map centred on 0, fitted; a fixed range.


def test_difference_diverging_fitted_and_fixed(session):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver, url, written, _ = session
    _open(driver, url, "layer_similarity", run="distilled", tag=MATRIX_TAG)
    step = logs.STEPS[-1]
    # A one-sided matrix: sequential map fitted to its range.
    bar = driver.find_element(By.CSS_SELECTOR, ".kh-colourbar")
    m = written["matrix"]["distilled"][step]
    assert bar.get_attribute("data-map") == "viridis"
    assert float(bar.get_attribute("data-lo")) == pytest.approx(m.min())
    assert float(bar.get_attribute("data-hi")) == pytest.approx(m.max())
    _select(driver, "minus", _pair("independent", MATRIX_TAG))
    browser.wait_ready(driver, view="difference")
    diff = m.astype(float) - written["matrix"]["independent"][step]
    span = np.abs(diff).max()
    bar = driver.find_element(By.CSS_SELECTOR, ".kh-colourbar")
    assert bar.get_attribute("data-map") == "diverging"
    assert float(bar.get_attribute("data-lo")) == pytest.approx(-span)
    assert float(bar.get_attribute("data-hi")) == pytest.approx(span)
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
    d = _data(driver, canvas)
    for i, j in [(0, 0), (2, 3), (4, 1)]:
        x = float(d["left"]) + (j + 0.5) * float(d["cellWidth"])
        y = float(d["top"]) + (i + 0.5) * float(d["cellHeight"])
        expected = _map(RDBU_R, (diff[i, j] + span) / (2 * span))
        np.testing.assert_allclose(
            _pixel(driver, canvas, x, y), expected, atol=2
        )
    # A fixed range holds across steps and runs.
    _select(driver, "scale", "fixed")
    browser.wait_ready(driver)
    for name, value in [("lo", "-0.25"), ("hi", "0.25")]:
        field = driver.find_element(By.CSS_SELECTOR, f"input[name='{name}']")
        field.clear()
        field.send_keys(value, Keys.TAB)
        browser.wait_ready(driver)
    slider = driver.find_element(By.ID, "kh-step-slider")
    slider.send_keys(Keys.ARROW_LEFT)
    browser.wait_ready(driver, step=logs.STEPS[-2])
    _select(driver, "minus", "")
    browser.wait_ready(driver, view="matrix")
    bar = driver.find_element(By.CSS_SELECTOR, ".kh-colourbar")
    assert (bar.get_attribute("data-lo"), bar.get_attribute("data-hi")) == (
        "-0.25",
        "0.25",
    )


# 6. Differences of series logged at different steps.


def test_difference_aligns_to_the_latest_earlier_step(session):
    from selenium.webdriver.common.by import By

    driver, url, written, _ = session
    late, late_layers = written["late"]
    _open(
        driver,
        url,
        "layer_similarity",
        run="distilled",
        tag=MATRIX_TAG,
        minus=_pair("late", MATRIX_TAG),
        step=2,
    )
    browser.wait_ready(driver, view="difference", step=2, otherStep=1)
    info = driver.find_element(By.CSS_SELECTOR, ".kh-info").text
    assert "step 1, its latest at or before 2" in info
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
    d = _data(driver, canvas)
    tip, _ = _hover(
        driver,
        canvas,
        float(d["left"]) + 1.5 * float(d["cellWidth"]),
        float(d["top"]) + 2.5 * float(d["cellHeight"]),
    )
    expected = (
        written["matrix"]["distilled"][2][2, 1].astype(float) - late[1][2, 1]
    )
    assert float(tip["value"]) == pytest.approx(expected, abs=1e-12)
    # Before the other series' first step: said, not blank.
    _open(
        driver,
        url,
        "layer_similarity",
        run="distilled",
        tag=MATRIX_TAG,
        minus=_pair("late", MATRIX_TAG),
        step=0,
    )
    error = driver.find_element(By.CSS_SELECTOR, ".kh-error")
    assert "no step at or before step 0" in error.text
    # Layer x time: step 0 dropped and said so; 2 compared with 1.
    _open(
        driver,
        url,
        "layer_similarity",
        run="distilled",
        tag=LAYERS_TAG,
        minus=_pair("late", LAYERS_TAG),
    )
    browser.wait_ready(driver, view="layers-difference", columns="1,2,3")
    info = driver.find_element(By.CSS_SELECTOR, ".kh-info").text
    assert "1 earlier step" in info and "latest step" in info
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
    d = _data(driver, canvas)
    tip, _ = _hover(
        driver,
        canvas,
        float(d["left"]) + 1.5 * float(d["cellWidth"]),
        float(d["top"]) + 3.5 * float(d["cellHeight"]),
    )
    series = written["layers"]["distilled"]
    assert float(tip["value"]) == pytest.approx(
        float(series[2][3]) - float(late_layers[1][3]), abs=1e-12
    )


# 7. New steps appear after TensorBoard's reload.


def test_reload_shows_new_steps(session):
    from selenium.webdriver.common.by import By

    driver, url, _, root = session
    _open(driver, url, "layer_similarity", run="live", tag="layer_similarity/s")
    browser.wait_ready(driver, view="layers", columns="0,1")
    logs.write_live(root / "logs", [2, 3])
    deadline = time.monotonic() + 40
    columns = None
    while time.monotonic() < deadline:
        driver.switch_to.default_content()
        driver.find_element(By.CSS_SELECTOR, "button.reload-button").click()
        browser.enter(driver, "layer_similarity")
        time.sleep(1.0)
        columns = driver.execute_script("return document.body.dataset.columns")
        if columns == "0,1,2,3":
            break
    assert columns == "0,1,2,3"
    browser.wait_ready(driver, step=3)


# 8. Long names neither freeze the page nor lose their ends.


def test_long_names_shortened_in_the_middle(session):
    from selenium.webdriver.common.by import By

    driver, url, _, _ = session
    start = time.monotonic()
    _open(driver, url, "layer_similarity", run="long")
    browser.wait_ready(driver, view="matrix")
    assert time.monotonic() - start < 20
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
    assert canvas.get_attribute("data-rows") == "60"
    name = logs.LONG_NAMES[7]
    text, width, ms = driver.execute_async_script(
        """
        const [name, done] = [arguments[0], arguments[1]];
        import(new URL('./static/ui.js', document.baseURI).href).then((ui) => {
          const ctx = document.createElement('canvas').getContext('2d');
          ctx.font = '11px sans-serif';
          const t0 = performance.now();
          const text = ui.fitText(ctx, name, 150);
          done([text, ctx.measureText(text).width, performance.now() - t0]);
        });
        """,
        name,
    )
    assert width <= 150
    assert text.startswith("x") and text.endswith("layer007") and "…" in text
    assert ms < 100


# 9. Large series fit the frame, with thinned labels, zoom and filter.


def test_large_series_fit_zoom_and_filter(session):
    from selenium.webdriver.common.by import By

    driver, url, _, _ = session
    _open(driver, url, "layer_similarity", run="big", tag="layer_similarity/s")
    browser.wait_ready(driver, view="layers")
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
    d = _data(driver, canvas)
    assert d["rows"] == str(len(logs.BIG_LAYERS))
    assert d["cols"] == str(logs.BIG_STEPS)
    frame = driver.execute_script("return document.documentElement.clientWidth")
    bar = driver.find_element(By.CSS_SELECTOR, ".kh-colourbar")
    right = driver.execute_script(
        "return arguments[0].getBoundingClientRect().right", bar
    )
    assert right <= frame
    # Drawn labels at least 13 px apart.
    assert int(d["rowStride"]) * float(d["cellHeight"]) >= 13
    assert int(d["colStride"]) * float(d["cellWidth"]) >= 13
    _select(driver, "zoom", "4")
    browser.wait_ready(driver)
    zoomed = _data(
        driver, driver.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
    )
    assert float(zoomed["cellWidth"]) == pytest.approx(
        4 * float(d["cellWidth"])
    )
    right = driver.execute_script(
        "return arguments[0].getBoundingClientRect().right",
        driver.find_element(By.CSS_SELECTOR, ".kh-colourbar"),
    )
    assert right <= frame
    field = driver.find_element(By.CSS_SELECTOR, "input[name='filter']")
    field.send_keys("layer01\n")
    browser.wait_ready(driver)
    shown = _data(
        driver, driver.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
    )
    assert shown["rows"] == str(sum("layer01" in n for n in logs.BIG_LAYERS))


# 10. Legible colour bars, special values, labels and user text.


def test_special_values_labels_and_colour_bar_title(session):
    from selenium.webdriver.common.by import By

    driver, url, _, _ = session
    _open(driver, url, "layer_similarity", run="specials")
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
    d = _data(driver, canvas)
    colours = {}
    for i in range(2):
        for j in range(2):
            x = float(d["left"]) + (j + 0.5) * float(d["cellWidth"])
            y = float(d["top"]) + (i + 0.5) * float(d["cellHeight"])
            colours[i, j] = tuple(_pixel(driver, canvas, x, y))
            tip, text = _hover(driver, canvas, x, y)
    assert len(set(colours.values())) == 4
    legend = {
        e.get_attribute("data-special"): e.text
        for e in driver.find_elements(
            By.CSS_SELECTOR, ".kh-specials [data-special]"
        )
    }
    assert set(legend) == {"nan", "posinf", "neginf"}
    # Rows and columns both named "layers": the tooltip says which is which.
    tip, text = _hover(
        driver,
        canvas,
        float(d["left"]) + 1.5 * float(d["cellWidth"]),
        float(d["top"]) + 0.5 * float(d["cellHeight"]),
    )
    assert "row (layers)" in text and "column (layers)" in text
    assert "+inf" in text
    # The colour bar's title is drawn beside it.
    bar = driver.find_element(By.CSS_SELECTOR, ".kh-colourbar")
    h = bar.size["height"]
    strip = _pixels(
        driver,
        bar,
        [(x, y) for x in range(2, 14, 2) for y in range(20, h - 20, 3)],
    )
    assert min(sum(p) for p in strip) < 200


def test_current_step_outline_on_dark_and_light_cells(session):
    from selenium.webdriver.common.by import By

    driver, url, _, _ = session
    _open(driver, url, "layer_similarity", run="distilled", tag=LAYERS_TAG)
    mark = driver.find_element(By.CSS_SELECTOR, ".kh-column-mark")
    style = driver.execute_script(
        "const s = getComputedStyle(arguments[0]);"
        "return [s.borderLeftColor, s.outlineColor, s.borderLeftWidth, s.outlineWidth]",
        mark,
    )
    assert style[0] == "rgb(255, 255, 255)" and style[1] == "rgb(0, 0, 0)"
    assert float(style[2][:-2]) >= 2 and float(style[3][:-2]) >= 2


def test_profile_colours_same_in_every_chart(session):
    from selenium.webdriver.common.by import By

    driver, url, _, _ = session
    _open(driver, url, "mode_connectivity", runs='["colours"]')
    colours = {}
    for chart in driver.find_elements(By.CSS_SELECTOR, "svg.kh-chart"):
        for group in chart.find_elements(By.CSS_SELECTOR, "g.kh-series"):
            key = group.get_attribute("data-series")
            stroke = group.find_element(
                By.CSS_SELECTOR, "polyline"
            ).get_attribute("stroke")
            colours.setdefault(key, set()).add(stroke)
    b = json.dumps(
        ["colours", "mode_connectivity/b_profile"], separators=(",", ":")
    )
    assert len(colours) == 2
    assert len(colours[b]) == 1
    assert len({c for v in colours.values() for c in v}) == 2


def test_right_to_left_override_isolated(session):
    from selenium.webdriver.common.by import By

    driver, url, _, _ = session
    _open(driver, url, "layer_similarity", run=logs.RTL_RUN)
    info = driver.find_element(By.CSS_SELECTOR, ".kh-info")
    assert "at step 3" in info.text
    # Text after the name still reads left to right.
    assert _text_left(driver, info, " at step") < _text_left(
        driver, info, "step 3"
    )


# Shared links and downloads.


def test_view_in_url_and_csv_download(session):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver, url, written, root = session
    _open(
        driver,
        url,
        "layer_similarity",
        run="independent",
        tag=MATRIX_TAG,
        step=1,
    )
    browser.wait_ready(driver, view="matrix", step=1)
    slider = driver.find_element(By.ID, "kh-step-slider")
    slider.send_keys(Keys.ARROW_RIGHT)
    browser.wait_ready(driver, step=2)
    driver.switch_to.default_content()
    address = driver.current_url
    browser.enter(driver, "layer_similarity")
    assert "p.layer_similarity.step=2" in address
    assert "p.layer_similarity.run=independent" in address
    driver.find_element(By.CSS_SELECTOR, "button[data-download='csv']").click()
    path = root / "downloads" / "independent_student_vs_teacher_step2.csv"
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = path.read_text().splitlines()
    assert lines[0].split(",")[1:] == logs.TEACHER
    assert [line.split(",")[0] for line in lines[1:]] == logs.LAYERS
    values = np.array([line.split(",")[1:] for line in lines[1:]], "float32")
    np.testing.assert_array_equal(values, written["matrix"]["independent"][2])


# Many runs: matrices side by side on one colour scale.


def test_runs_side_by_side_share_one_scale(session):
    from selenium.webdriver.common.by import By

    driver, url, written, _ = session
    _open(
        driver,
        url,
        "layer_similarity",
        run="distilled",
        tag=MATRIX_TAG,
        beside='["independent","late"]',
    )
    browser.wait_ready(driver, view="matrix")
    panels = driver.find_elements(By.CSS_SELECTOR, ".kh-beside")
    assert [p.get_attribute("data-run") for p in panels] == [
        "distilled",
        "independent",
        "late",
    ]
    step = logs.STEPS[-1]
    shown = [
        written["matrix"]["distilled"][step],
        written["matrix"]["independent"][step],
        written["late"][0][3],
    ]
    lo, hi = min(m.min() for m in shown), max(m.max() for m in shown)
    for panel, matrix in zip(panels, shown):
        bar = panel.find_element(By.CSS_SELECTOR, ".kh-colourbar")
        assert float(bar.get_attribute("data-lo")) == pytest.approx(lo)
        assert float(bar.get_attribute("data-hi")) == pytest.approx(hi)
        canvas = panel.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
        d = _data(driver, canvas)
        tip, _ = _hover(
            driver,
            canvas,
            float(d["left"]) + 2.5 * float(d["cellWidth"]),
            float(d["top"]) + 1.5 * float(d["cellHeight"]),
        )
        assert np.float32(tip["value"]) == matrix[1, 2]


def test_log_plane_from_a_link_stays_sequential(session):
    # log10 of a loss from 0.1 to 1.6 crosses 0, which means nothing there:
    # still viridis, not the diverging map of differences.
    from selenium.webdriver.common.by import By

    driver, url, written, _ = session
    key = json.dumps(
        ["connectivity", "mode_connectivity/plane"], separators=(",", ":")
    )
    _open(
        driver,
        url,
        "mode_connectivity",
        runs='["connectivity"]',
        log=json.dumps([f"plane:{key}:loss"]),
    )
    box = driver.find_element(By.CSS_SELECTOR, ".kh-planes input[name='log']")
    assert box.is_selected()
    bar = driver.find_element(By.CSS_SELECTOR, ".kh-planes .kh-colourbar")
    assert bar.get_attribute("data-title") == "log10 loss"
    assert bar.get_attribute("data-map") == "viridis"
    loss = written["plane"][2]["loss"]
    assert float(bar.get_attribute("data-lo")) == pytest.approx(
        np.log10(loss.min()), rel=1e-5
    )
    assert float(bar.get_attribute("data-hi")) == pytest.approx(
        np.log10(loss.max()), rel=1e-5
    )


def test_snapshot_label_readable_with_its_distance(session):
    from selenium.webdriver.common.by import By

    driver, url, _, _ = session
    _open(driver, url, "mode_connectivity", runs='["snapshot"]')
    info = driver.find_element(By.CSS_SELECTOR, ".kh-planes .kh-info").text
    # Names are wrapped in bidi isolates (U+2068 ... U+2069).
    assert "snap (0.25 off the plane)" in info.replace("\u2068", "").replace(
        "\u2069", ""
    )
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-plane-canvas")
    d = _data(driver, canvas)
    ex, ey = _edges(np.linspace(0, 1, 5)), _edges(np.linspace(0, 1, 4))
    px = float(d["left"]) + (0.3 - ex[0]) / (ex[-1] - ex[0]) * float(
        d["plotWidth"]
    )
    py = float(d["top"]) + (ey[-1] - 0.6) / (ey[-1] - ey[0]) * float(
        d["plotHeight"]
    )
    # The label, right of the marker on yellow cells: white text on a
    # dark outline, so both ends of the scale appear there.
    box = [
        sum(p)
        for p in _pixels(
            driver,
            canvas,
            [
                (px + dx, py + dy)
                for dx in range(8, 120, 2)
                for dy in range(-16, -3)
            ],
        )
    ]
    assert min(box) < 150 and max(box) > 740
