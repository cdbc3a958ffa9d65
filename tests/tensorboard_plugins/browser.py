"""A real `tensorboard` server and a headless Chromium for end-to-end tests.

Chromium and ChromeDriver come from Debian (`apt-get install chromium
chromium-driver`); selenium drives them by path, so nothing is downloaded.
Only loopback addresses are opened.
"""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
]


def missing():
    """What the end-to-end test lacks here, or None."""
    for path in [CHROMIUM, CHROMEDRIVER]:
        if not os.path.exists(path):
            return f"{path} is not installed"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    return None


@contextlib.contextmanager
def tensorboard(logdir, timeout=60, reload_interval=0):
    """Runs `tensorboard --logdir` on 127.0.0.1; yields its base URL.

    `reload_interval` 0 reads the logdir once; a number of seconds reads
    new events that often.
    """
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            os.fspath(logdir),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--reload_interval",
            str(reload_interval),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + timeout
        lines = []
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line and process.poll() is not None:
                break
            lines.append(line)
            match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
            if match:
                url = match.group(1)
        if url is None:
            raise RuntimeError("tensorboard did not start:\n" + "".join(lines))
        # Keep reading its log so that the pipe never fills up.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url + "data/plugins_listing", timeout=5)
                break
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def chromium(profile_dir):
    """A headless Chromium driven by selenium, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={os.fspath(profile_dir)}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile_dir, ignore_errors=True)


def open_dashboard(driver, url, plugin, timeout=30, state=None):
    """Opens a plugin's tab and enters its iframe once it has rendered.

    `state` ({key: value}) goes into the URL as the `p.<plugin>.<key>`
    entries that a shared link carries.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver.switch_to.default_content()
    hash_ = plugin + "".join(
        f"&{urllib.parse.quote(f'p.{plugin}.{k}', safe='')}="
        f"{urllib.parse.quote(str(v), safe='')}"
        for k, v in (state or {}).items()
    )
    # A new hash alone does not reload the page.
    driver.get("about:blank")
    driver.get(f"{url}#{hash_}")
    WebDriverWait(driver, timeout).until(
        expected_conditions.frame_to_be_available_and_switch_to_it(
            (By.CSS_SELECTOR, _frame(plugin))
        )
    )
    wait_ready(driver, timeout)


def _frame(plugin):
    # TensorBoard keeps the frames of tabs visited before.
    return f"iframe[src*='name={plugin}']"


def enter(driver, plugin):
    """Switches back into a dashboard's iframe."""
    from selenium.webdriver.common.by import By

    driver.switch_to.default_content()
    driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, _frame(plugin)))


def wait_ready(driver, timeout=30, **dataset):
    """Waits until `body[data-ready=1]` and the given `data-*` values."""
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        body = d.execute_script(
            "return Object.assign({}, document.body.dataset)"
        )
        return body.get("ready") == "1" and all(
            body.get(k) == str(v) for k, v in dataset.items()
        )

    WebDriverWait(driver, timeout, poll_frequency=0.1).until(ready)


def full_page_screenshot(driver, plugin, path):
    """Screenshot of the TensorBoard page with the whole dashboard shown;
    returns into the dashboard's iframe."""
    enter(driver, plugin)
    height = driver.execute_script(
        "return document.documentElement.scrollHeight"
    )
    driver.switch_to.default_content()
    driver.set_window_size(1280, min(2400, max(900, height + 220)))
    time.sleep(0.3)
    driver.save_screenshot(os.fspath(path))
    enter(driver, plugin)
