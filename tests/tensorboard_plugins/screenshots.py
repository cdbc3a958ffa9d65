"""Screenshots of both dashboards for the README.

    .venv/bin/python -m tests.tensorboard_plugins.screenshots docs/images

Writes `layer_similarity.png`, `layer_similarity_time.png` and
`mode_connectivity.png` from `logs.write_demo_logdir` (synthetic values
shaped like the paper's figures; 24 layers, 200 steps) in a real
TensorBoard and headless Chromium.
"""

import os
import sys
import tempfile

from tests.tensorboard_plugins import browser
from tests.tensorboard_plugins import logs


def main(out_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        logs.write_demo_logdir(os.path.join(tmp, "logs"))
        with browser.tensorboard(os.path.join(tmp, "logs")) as url:
            with browser.chromium(os.path.join(tmp, "profile")) as driver:
                browser.open_dashboard(driver, url, "layer_similarity")
                browser.wait_ready(driver, view="matrix")
                canvas = driver.find_element(
                    By.CSS_SELECTOR, ".kh-heatmap-canvas"
                )
                from selenium.webdriver.common.action_chains import ActionChains

                ActionChains(driver).move_to_element_with_offset(
                    canvas, 40, 20
                ).perform()
                browser.full_page_screenshot(
                    driver,
                    "layer_similarity",
                    os.path.join(out_dir, "layer_similarity.png"),
                )
                Select(
                    driver.find_element(
                        By.XPATH, "//label[contains(., 'Tag')]/select"
                    )
                ).select_by_value("layer_similarity/self_vs_final")
                browser.wait_ready(driver, view="layers")
                browser.full_page_screenshot(
                    driver,
                    "layer_similarity",
                    os.path.join(out_dir, "layer_similarity_time.png"),
                )
                browser.open_dashboard(driver, url, "mode_connectivity")
                browser.full_page_screenshot(
                    driver,
                    "mode_connectivity",
                    os.path.join(out_dir, "mode_connectivity.png"),
                )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/images")
