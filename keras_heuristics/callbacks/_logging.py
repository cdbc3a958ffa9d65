"""What the callbacks that write to TensorBoard or to files share."""

import glob
import os
import tempfile

from keras_heuristics import _backend
from keras_heuristics.tensorboard import writer_for

# Folder -> (model, optimizer) of the `fit` that writes there in this process.
_OWNERS = {}


def check_log_dir(log_dir):
    if not isinstance(log_dir, (str, os.PathLike)) or not os.fspath(log_dir):
        raise TypeError(
            "Argument `log_dir` must be a non-empty path. "
            f"Received: log_dir={log_dir!r}"
        )
    log_dir = os.fspath(log_dir)
    if os.path.exists(log_dir) and not os.path.isdir(log_dir):
        raise ValueError(
            "Argument `log_dir` must be a folder (or a path to create), not "
            f"a file. Received: log_dir={log_dir!r}"
        )
    return log_dir


def optimizer_step(model):
    """The optimizer's update count (0 without an optimizer)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return 0
    return _backend.as_int(optimizer.iterations)


def check_writable(folder):
    """Creates `folder` and checks that a file can be written there."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write_check"):
            pass
    except OSError as error:
        raise ValueError(
            f"Argument `log_dir` must be a writable folder: {folder!r} "
            f"cannot be written ({type(error).__name__}: {error})."
        ) from None


def fresh_run_refused(what, path):
    return ValueError(
        f"Argument `log_dir` already holds {what} of an earlier run "
        f"({path!r}), and this `fit` starts afresh (its optimizer has taken "
        "no step). Pass a new `log_dir` (e.g. a subfolder per run) or remove "
        "the old files; to continue that run, restore its model and "
        "optimizer (`keras.saving.load_model`, `BackupAndRestore`) and fit "
        "with `initial_epoch`."
    )


def run_writer(log_dir, run, model):
    """The shared writer of `log_dir/run` (Keras' folder layout) for the
    `fit` of `model`.

    Callbacks of one `fit` share one event file. A `fit` that continues a
    run (its optimizer has taken steps) appends to the folder, and its steps
    continue; a fresh `fit` into a folder that already holds event files is
    refused, since TensorBoard would show two runs' steps mixed.
    """
    folder = os.path.abspath(os.path.join(log_dir, run))
    owner = (id(model), id(getattr(model, "optimizer", None)))
    if _backend.is_chief() and _OWNERS.get(folder) != owner:
        check_writable(folder)
        events = glob.glob(os.path.join(folder, "events.out.tfevents.*"))
        if events and optimizer_step(model) == 0:
            raise fresh_run_refused("TensorBoard event files", folder)
    _OWNERS[folder] = owner
    return writer_for(folder)


def write_atomically(path, write):
    """Calls `write(temporary_path)`, then moves the file onto `path`: a
    reader (or a killed run) sees the old file or the new one, never half
    of one."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    # The temporary name ends like `path` (".npz", ".weights.h5"): writers
    # such as `np.savez` and `save_weights` go by the extension.
    suffix = base[base.index(".") :] if "." in base else ""
    descriptor, temporary = tempfile.mkstemp(
        dir=folder, prefix=f".{base}.", suffix=suffix
    )
    os.close(descriptor)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
