"""Screenshots of both dashboards for the README.

    .venv/bin/python -m tests.tensorboard_plugins.screenshots docs/images
    .venv/bin/python -m tests.tensorboard_plugins.screenshots docs/images \\
        runs/demo demo_

The first writes `layer_similarity.png`, `layer_similarity_time.png` and
`mode_connectivity.png` from `logs.write_demo_logdir` (synthetic values
shaped like the paper's figures; 24 layers, 200 steps). The second shows a
real log folder (the demo's: `python -m examples.demo --logdir runs/demo`)
and prefixes the file names: `<prefix>layer_similarity_difference.png`
(a run's distilled minus independent student vs teacher matrices, when
logged), `<prefix>layer_similarity_time.png` and
`<prefix>mode_connectivity.png`. Each view
is opened from a link carrying its state, as a shared link would.
"""

import json
import os
import sys
import tempfile
import urllib.request

from tests.tensorboard_plugins import browser
from tests.tensorboard_plugins import logs


def _listing(url, plugin):
    with urllib.request.urlopen(f"{url}data/plugin/{plugin}/tags") as r:
        return json.load(r)["runs"]


def _distilled_and_independent(runs):
    """(run, distilled tag, independent tag) of one run, if logged."""
    for run, tags in runs.items():
        names = [t for t, info in tags.items() if info["kind"] == "matrix"]
        distilled = [t for t in names if "distilled_vs" in t]
        independent = [t for t in names if "independent_vs" in t]
        if distilled and independent:
            return run, distilled[0], independent[0]
    return None


def _first(runs, kind):
    for run, tags in runs.items():
        for tag, info in tags.items():
            if info["kind"] == kind and not info["error"]:
                return run, tag
    return None


def _shoot(driver, url, plugin, path, **state):
    browser.open_dashboard(driver, url, plugin, state=state)
    browser.full_page_screenshot(driver, plugin, path)


def _shots(driver, url, out_dir, prefix):
    runs = _listing(url, "layer_similarity")
    pair = _distilled_and_independent(runs)
    matrix = _first(runs, "matrix")
    if matrix and not prefix:
        run, tag = matrix
        _shoot(
            driver,
            url,
            "layer_similarity",
            os.path.join(out_dir, f"{prefix}layer_similarity.png"),
            run=run,
            tag=tag,
        )
    pair = _distilled_and_independent(runs)
    if pair:
        run, tag, other = pair
        _shoot(
            driver,
            url,
            "layer_similarity",
            os.path.join(out_dir, f"{prefix}layer_similarity_difference.png"),
            run=run,
            tag=tag,
            minus=json.dumps([run, other], separators=(",", ":")),
        )
    layers = _first(runs, "layers")
    if layers:
        _shoot(
            driver,
            url,
            "layer_similarity",
            os.path.join(out_dir, f"{prefix}layer_similarity_time.png"),
            run=layers[0],
            tag=layers[1],
        )
    runs = _listing(url, "mode_connectivity")
    plane = _first(runs, "plane")
    state = {}
    if plane:
        # Loss planes read best on a log scale.
        key = json.dumps(list(plane), separators=(",", ":"))
        state = {
            "runs": json.dumps([plane[0]]),
            "log": json.dumps([f"plane:{key}:loss"]),
            "metric": json.dumps({key: "loss"}),
        }
    _shoot(
        driver,
        url,
        "mode_connectivity",
        os.path.join(out_dir, f"{prefix}mode_connectivity.png"),
        **state,
    )


def main(out_dir, logdir=None, prefix=""):
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if logdir is None:
            logdir = os.path.join(tmp, "logs")
            logs.write_demo_logdir(logdir)
        with browser.tensorboard(logdir) as url:
            with browser.chromium(os.path.join(tmp, "profile")) as driver:
                _shots(driver, url, out_dir, prefix)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        args[0] if args else "docs/images",
        args[1] if len(args) > 1 else None,
        args[2] if len(args) > 2 else "",
    )
