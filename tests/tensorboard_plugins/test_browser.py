"""End to end: `tensorboard --logdir` in a subprocess, headless Chromium.

Skipped where Chromium, ChromeDriver or selenium are missing, unless
`KERAS_HEURISTICS_REQUIRE_BROWSER=1` (set in CI), where it fails instead.
Screenshots of both dashboards are left in the test's `tmp_path`.
"""

import json
import os

import numpy as np
import pytest

from tests.tensorboard_plugins import browser
from tests.tensorboard_plugins import logs

# The dashboards do not depend on the Keras backend: one run is enough.
pytestmark = [pytest.mark.slow, pytest.mark.only_backends("jax")]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    reason = browser.missing()
    if reason:
        if os.environ.get("KERAS_HEURISTICS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"End-to-end browser test required, but {reason}.")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("e2e")
    written = logs.write_logdir(root / "logs")
    with browser.tensorboard(root / "logs") as url:
        with browser.chromium(root / "profile") as driver:
            yield driver, url, written, root


MATRIX_TAG = "layer_similarity/student_vs_teacher"


def _pair(run, tag):
    return json.dumps([run, tag], separators=(",", ":"))


def _select(driver, label, value):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    element = driver.find_element(
        By.XPATH, f"//label[contains(., '{label}')]/select"
    )
    Select(element).select_by_value(value)


def _hover(driver, canvas, row, col):
    """Moves the pointer to the centre of a heatmap cell; returns tooltip."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    d = driver.execute_script(
        "return Object.assign({}, arguments[0].dataset)", canvas
    )
    size = canvas.size
    x = float(d["left"]) + (col + 0.5) * float(d["cellWidth"])
    y = float(d["top"]) + (row + 0.5) * float(d["cellHeight"])
    ActionChains(driver).move_to_element_with_offset(
        canvas, int(x - size["width"] / 2), int(y - size["height"] / 2)
    ).perform()
    tooltip = canvas.find_element(By.XPATH, "../div[@class='kh-tooltip']")
    assert tooltip.is_displayed()
    return tooltip


def _console_errors(driver):
    """Script errors and policy violations (expected 4xx answers aside)."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE"
        and (
            "/data/plugin/" in entry["message"] or "Policy" in entry["message"]
        )
        and "the server responded with a status of 4" not in entry["message"]
    ]


def test_layer_similarity_dashboard(session):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver, url, written, root = session
    browser.open_dashboard(driver, url, "layer_similarity")

    # Names that look like HTML are shown as text and never run.
    options = [o.text for o in driver.find_elements(By.CSS_SELECTOR, "option")]
    assert logs.SCRIPT_RUN in options and logs.IMG_RUN in options
    assert driver.execute_script("return window.__xss") is None
    assert not driver.find_elements(By.CSS_SELECTOR, "img")
    scripts = driver.find_elements(By.CSS_SELECTOR, "script")
    assert not [s for s in scripts if "__xss" in s.get_attribute("outerHTML")]

    _select(driver, "Run", "distilled")
    browser.wait_ready(driver, view="matrix", step=logs.STEPS[-1])
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
    assert canvas.get_attribute("data-rows") == str(len(logs.LAYERS))
    assert canvas.get_attribute("data-cols") == str(len(logs.TEACHER))
    matrices = written["matrix"]
    step = logs.STEPS[-1]
    for row, col in [(0, 0), (2, 1), (4, 3)]:
        tooltip = _hover(driver, canvas, row, col)
        assert tooltip.get_attribute("data-row") == str(row)
        assert tooltip.get_attribute("data-col") == str(col)
        assert (
            np.float32(tooltip.get_attribute("data-value"))
            == (matrices["distilled"][step][row, col])
        )
        assert logs.LAYERS[row] in tooltip.text
        assert logs.TEACHER[col] in tooltip.text
    browser.full_page_screenshot(
        driver, "layer_similarity", root / "layer_similarity_matrix.png"
    )

    # The step slider: two steps back.
    slider = driver.find_element(By.ID, "kh-step-slider")
    slider.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    step = logs.STEPS[-3]
    browser.wait_ready(driver, view="matrix", step=step)
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
    tooltip = _hover(driver, canvas, 2, 1)
    assert (
        np.float32(tooltip.get_attribute("data-value"))
        == (matrices["distilled"][step][2, 1])
    )

    # The difference of two runs at the same step.
    _select(driver, "Minus", _pair("independent", MATRIX_TAG))
    browser.wait_ready(driver, view="difference", step=step)
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
    expected = matrices["distilled"][step].astype(np.float64) - matrices[
        "independent"
    ][step].astype(np.float64)
    for row, col in [(1, 2), (3, 0)]:
        tooltip = _hover(driver, canvas, row, col)
        np.testing.assert_allclose(
            float(tooltip.get_attribute("data-value")),
            expected[row, col],
            rtol=0,
            atol=1e-12,
        )
    # A diverging scale centred on 0, fitted to the largest difference.
    colourbar = driver.find_element(By.CSS_SELECTOR, ".kh-colourbar")
    span = np.abs(expected).max()
    np.testing.assert_allclose(float(colourbar.get_attribute("data-lo")), -span)
    np.testing.assert_allclose(float(colourbar.get_attribute("data-hi")), span)
    browser.full_page_screenshot(
        driver, "layer_similarity", root / "layer_similarity_diff.png"
    )

    # The layer x time view of a per-layer series.
    _select(driver, "Minus", "")
    _select(driver, "Tag", "layer_similarity/self_vs_final")
    browser.wait_ready(driver, view="layers")
    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-heatmap-canvas")
    assert canvas.get_attribute("data-rows") == str(len(logs.LAYERS))
    assert canvas.get_attribute("data-cols") == str(len(logs.STEPS))
    tooltip = _hover(driver, canvas, 3, 1)
    assert (
        np.float32(tooltip.get_attribute("data-value"))
        == (written["layers"]["distilled"][logs.STEPS[1]][3])
    )

    # A series written by another format version explains itself.
    _select(driver, "Run", "bad")
    browser.wait_ready(driver)
    error = driver.find_element(By.CSS_SELECTOR, ".kh-error")
    assert "shape (2, 2)" in error.text
    _select(driver, "Tag", "layer_similarity/future")
    browser.wait_ready(driver)
    error = driver.find_element(By.CSS_SELECTOR, ".kh-error")
    assert "reads version 1" in error.text
    assert _console_errors(driver) == []


def test_mode_connectivity_dashboard(session):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver, url, written, root = session
    browser.open_dashboard(driver, url, "mode_connectivity")
    charts = driver.find_elements(By.CSS_SELECTOR, "svg.kh-chart")
    assert [c.get_attribute("data-metric") for c in charts] == [
        "loss",
        "accuracy",
    ]
    for chart in charts:
        lines = chart.find_elements(By.CSS_SELECTOR, "polyline")
        assert len(lines) == 2
        assert [len(p.get_attribute("points").split()) for p in lines] == [
            11,
            11,
        ]
    # The loss chart's tooltips carry the written values, curve first.
    titles = [
        t.get_attribute("textContent")
        for t in charts[0].find_elements(By.CSS_SELECTOR, "title")
    ]
    t, metrics = written["profile"]["line"]
    assert f"loss = {float(np.float32(metrics['loss'][5])):.4g}" in titles[16]

    canvas = driver.find_element(By.CSS_SELECTOR, ".kh-plane-canvas")
    assert int(canvas.get_attribute("data-levels")) >= 3
    # The pointer over the plane's centre shows the grid value there.
    x, y, grids = written["plane"]
    ActionChains(driver).move_to_element(canvas).perform()
    tooltip = canvas.find_element(By.XPATH, "../div[@class='kh-tooltip']")
    row = int(tooltip.get_attribute("data-row"))
    col = int(tooltip.get_attribute("data-col"))
    assert (
        np.float32(tooltip.get_attribute("data-value"))
        == (grids["loss"][row, col])
    )
    assert _console_errors(driver) == []
    browser.full_page_screenshot(
        driver, "mode_connectivity", root / "mode_connectivity.png"
    )
    assert (root / "mode_connectivity.png").stat().st_size > 10_000
