"""The main job: the paper's analyses on scikit-learn's digits, one log folder.

    make demo                      # or: python -m examples.demo --logdir runs/demo
    tensorboard --logdir runs/demo

Each analysis writes into its own subfolder of `--logdir`, so one
`tensorboard --logdir` shows everything.
"""

import importlib
import os
import shutil
import time

from absl import app
from absl import flags


def define_flags():
    """Defined on demand, not at import: importing this module (tests, other
    tools that parse `--logdir` themselves) must not claim global flags."""
    flags.DEFINE_string("logdir", "runs/demo", "Root folder of all the logs.")
    flags.DEFINE_bool(
        "quick",
        False,
        "Demo-sized runs (about a minute each) instead of full ones.",
    )
    flags.DEFINE_list(
        "only", [], "Run only these steps (by name); all of them by default."
    )


# (name, module, what it shows). Each module has `run(logdir, quick=...)`.
STEPS = [
    ("sgdr", "examples.sgdr_snapshots", "warmup + SGDR, LR logging, snapshots"),
    (
        "warmup_cca",
        "examples.warmup_cca",
        "layer x time CCA: small batch, large batch, large batch + warmup",
    ),
    (
        "warmup_dynamics",
        "examples.warmup_dynamics",
        "warmup, catapult start, frozen layers, GI-Adam: sharpness and CCA",
    ),
    (
        "mode_connectivity",
        "examples.sgdr_mode_connectivity",
        "SGDR snapshots vs SGD: lines, a learned curve and the plane",
    ),
    (
        "distillation",
        "examples.distillation_cca",
        "where a teacher's knowledge lands: student vs teacher SVCCA",
    ),
]


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    root = os.path.abspath(FLAGS.logdir)
    names = [name for name, _, _ in STEPS]
    unknown = sorted(set(FLAGS.only) - set(names))
    if unknown:
        raise app.UsageError(
            f"--only: unknown step(s) {unknown}; choose from {names}"
        )
    started = time.time()
    for name, module, what in STEPS:
        if FLAGS.only and name not in FLAGS.only:
            continue
        print(f"\n=== {name}: {what} ===", flush=True)
        step_started = time.time()
        folder = os.path.join(root, name)
        if os.path.isdir(folder):
            print(f"(replacing the logs of an earlier run in {folder})")
            shutil.rmtree(folder)
        importlib.import_module(module).run(folder, quick=FLAGS.quick)
        print(f"=== {name} done in {time.time() - step_started:.0f} s ===")
    print(
        f"\nAll done in {time.time() - started:.0f} s. TensorBoard logs are in\n"
        f"  {root}\nOpen them with\n"
        f"  .venv/bin/tensorboard --logdir {root}\n"
        "and browse to http://localhost:6006"
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
