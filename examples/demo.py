"""The main job: Gotmare et al.'s three findings on MNIST-1D, one log folder.

    make demo                      # or: python -m examples.demo --logdir runs/demo
    tensorboard --logdir runs/demo

Runs the reproduction (`examples.reproduce`) at its quick scale: SGDR
snapshots and mode connectivity, warmup and layer stability, and where
distillation's knowledge lands, each over 2 seeds on MNIST-1D generated
offline, in a few minutes on a 2-core CPU. `--full` runs the default scale
(5 seeds, about as long as the README says). A rerun into the same folder
resumes: finished cells are read back, not trained again.
"""

import os
import time

from absl import app
from absl import flags

from examples import reproduce


def define_flags():
    """Defined on demand, not at import: importing this module (tests, other
    tools that parse `--logdir` themselves) must not claim global flags."""
    flags.DEFINE_string("logdir", "runs/demo", "Root folder of all the logs.")
    flags.DEFINE_bool(
        "full", False, "The default reproduction (5 seeds) instead."
    )
    flags.DEFINE_list(
        "only",
        [],
        f"Run only these of {list(reproduce.EXPERIMENTS)}; all by default.",
    )


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    root = os.path.abspath(FLAGS.logdir)
    started = time.time()
    reproduce.run(root, only=FLAGS.only or None, quick=not FLAGS.full)
    print(
        f"\nAll done in {time.time() - started:.0f} s. Results, pictures and "
        f"TensorBoard logs are in\n  {root}\nOpen them with\n"
        f"  .venv/bin/tensorboard --logdir {root}\n"
        "and browse to http://localhost:6006"
    )


if __name__ == "__main__":
    define_flags()
    app.run(main)
