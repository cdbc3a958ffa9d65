"""A TensorBoard event writer that needs neither TensorFlow nor a backend.

Built on TensorBoard's own `EventFileWriter` and protocol buffers, so the
files are read by `tensorboard --logdir` (both its Python and Rust loaders),
and it works the same on TensorFlow, JAX and PyTorch. Keras' own TensorBoard
callback imports TensorFlow on every backend; this one does not.
"""

import json
import numbers
import os
import threading
import time
import zlib

import numpy as np
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.proto import summary_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.util import tensor_util

from keras_heuristics import _validation
from keras_heuristics.tensorboard import png

_WRITERS = {}
_WRITERS_LOCK = threading.Lock()


def _check_tag(tag):
    if not isinstance(tag, str) or not tag:
        raise TypeError(
            f"Argument `tag` must be a non-empty string. Received: tag={tag!r}"
        )
    return tag


# Event steps are int64 in TensorBoard's protocol buffers.
_MAX_STEP = 2**63 - 1

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# PNG colour type -> number of channels (TensorBoard's `colorspace`).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


def _check_step(step):
    step = _validation.check_int("step", step, minimum=0)
    if step > _MAX_STEP:
        raise ValueError(
            f"Argument `step` must fit in int64 (<= {_MAX_STEP}). "
            f"Received: step={step!r}"
        )
    return step


def _check_scalar(value):
    """A Python float from a number, NumPy scalar or 0-d array or tensor.

    NaN and infinities pass: a diverged loss is worth logging.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"Argument `value` must be a number, not a bool. "
            f"Received: value={value!r}"
        )
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(
                "Argument `value` is too large for a float. "
                f"Received: value={value!r:.40}..."
            ) from None
    array = _validation.number_array(
        "value", value, what="a number or a 0-d array"
    )
    if array.ndim != 0:
        raise ValueError(
            "Argument `value` must be a scalar (a 0-d array). "
            f"Received: shape={array.shape}"
        )
    return float(array)


def _png_header(data):
    """(width, height, channels) of PNG bytes, read from the IHDR chunk."""
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError(
            "Argument `image` bytes must be a PNG file (starting with the "
            f"PNG signature). Received: {bytes(data[:8])!r}"
        )
    # Signature, chunk length, b"IHDR", 13 bytes of header, CRC.
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ValueError(
            "Argument `image` bytes must be a PNG file with a complete IHDR "
            f"chunk. Received {len(data)} bytes."
        )
    length = int.from_bytes(data[8:12], "big")
    crc = int.from_bytes(data[29:33], "big")
    if length != 13 or zlib.crc32(data[12:29]) & 0xFFFFFFFF != crc:
        raise ValueError(
            "Argument `image` bytes must be a PNG file: its IHDR chunk is "
            "corrupt (wrong length or checksum)."
        )
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    color_type = data[25]
    if width == 0 or height == 0 or color_type not in _PNG_CHANNELS:
        raise ValueError(
            "Argument `image` bytes must be a PNG file with a valid header. "
            f"Received: width={width}, height={height}, "
            f"color_type={color_type}"
        )
    return width, height, _PNG_CHANNELS[color_type]


def _check_text(name, value):
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"Argument `{name}` must be a string or None. "
            f"Received: {name}={value!r}"
        )
    return value


class SummaryWriter:
    """Writes scalars, PNG images and plugin tensors to one event file.

    Args:
        logdir: Folder of the run; created if missing.
        flush_secs: How often pending events are written out, in seconds
            (> 0).
        enabled: If False, the writer checks its arguments but creates no
            folder and writes nothing: what `writer_for` gives the
            processes other than the chief of a distributed job, so that
            each summary is written once.

    Example:

    ```python
    writer = keras_heuristics.tensorboard.SummaryWriter("runs/demo/train")
    writer.scalar("loss", 0.25, step=10)
    writer.close()
    ```
    """

    def __init__(self, logdir, flush_secs=10, enabled=True):
        if not isinstance(logdir, (str, os.PathLike)):
            raise TypeError(
                f"Argument `logdir` must be a path. Received: logdir={logdir!r}"
            )
        if not isinstance(enabled, bool):
            raise TypeError(
                f"Argument `enabled` must be a bool. Received: enabled={enabled!r}"
            )
        flush_secs = _validation.check_positive("flush_secs", flush_secs)
        self.logdir = os.fspath(logdir)
        if os.path.exists(self.logdir) and not os.path.isdir(self.logdir):
            raise ValueError(
                "Argument `logdir` must be a folder (or a path to create), "
                f"not a file. Received: logdir={self.logdir!r}"
            )
        self.enabled = enabled
        self._writer = None
        if enabled:
            os.makedirs(self.logdir, exist_ok=True)
            self._writer = EventFileWriter(self.logdir, flush_secs=flush_secs)
        self._tags_with_metadata = set()
        self._closed = False

    def _write(self, value, step):
        if self._closed:
            raise RuntimeError(f"The writer for {self.logdir!r} is closed.")
        if self._writer is None:
            return
        event = event_pb2.Event(
            wall_time=time.time(),
            step=step,
            summary=summary_pb2.Summary(value=[value]),
        )
        self._writer.add_event(event)

    def scalar(self, tag, value, step):
        """Writes a scalar (shown by the Scalars and Time Series dashboards).

        Args:
            tag: Series name, a non-empty string.
            value: A real number: Python or NumPy scalar, or a 0-d array or
                tensor. NaN and infinities are written as they are.
            step: An integer in [0, 2**63 - 1].

        Raises:
            TypeError: if `value` is not a real number (None, a string, a
                bool) or `step` not an integer.
            ValueError: if `value` has more than one element or `step` is
                negative or does not fit in int64.
        """
        tag, step = _check_tag(tag), _check_step(step)
        value = _check_scalar(value)
        self._write(
            summary_pb2.Summary.Value(tag=tag, simple_value=value), step
        )

    def image(self, tag, image, step):
        """Writes an image: PNG bytes, or an array as `png.encode_png` takes.

        PNG bytes are checked for the PNG signature and a complete, valid
        IHDR chunk (whose width, height and colour type are recorded); the
        rest of the file is written as it is.

        Raises:
            ValueError: if `image` is neither a valid PNG file nor an array
                that `encode_png` accepts.
        """
        tag, step = _check_tag(tag), _check_step(step)
        if isinstance(image, bytes):
            data = image
            width, height, channels = _png_header(data)
        else:
            array = np.asarray(image)
            data = png.encode_png(array)
            height, width = array.shape[:2]
            channels = 1 if array.ndim == 2 else array.shape[2]
        summary_image = summary_pb2.Summary.Image(
            height=height,
            width=width,
            colorspace=channels,
            encoded_image_string=data,
        )
        self._write(
            summary_pb2.Summary.Value(tag=tag, image=summary_image), step
        )

    def tensor(
        self,
        tag,
        array,
        step,
        plugin_name,
        content=None,
        display_name=None,
        description=None,
    ):
        """Writes a tensor summary owned by a TensorBoard plugin.

        The metadata (with `data_class=DATA_CLASS_TENSOR`, without which
        TensorBoard's data provider hides the series) is written with the
        first event of each tag, as TensorFlow does.

        Args:
            tag: Series name.
            array: Array-like of numbers.
            step: Step (epoch, usually) of this value.
            plugin_name: The plugin that reads this series.
            content: JSON-serializable dict stored as the plugin's content.
            display_name: Optional display name.
            description: Optional Markdown description.
        """
        tag, step = _check_tag(tag), _check_step(step)
        if not isinstance(plugin_name, str) or not plugin_name:
            raise TypeError(
                "Argument `plugin_name` must be a non-empty string. "
                f"Received: plugin_name={plugin_name!r}"
            )
        display_name = _check_text("display_name", display_name)
        description = _check_text("description", description)
        if content is not None and not isinstance(content, dict):
            raise TypeError(
                "Argument `content` must be a dict or None. "
                f"Received: {type(content).__name__}"
            )
        try:
            # Strict JSON (no NaN): the plugins parse it in the browser.
            encoded = json.dumps(content or {}, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(
                "Argument `content` must be JSON-serializable, with finite "
                f"numbers. Received: {error}"
            ) from None
        array = _validation.number_array("array", array)
        value = summary_pb2.Summary.Value(
            tag=tag, tensor=tensor_util.make_tensor_proto(array)
        )
        first = tag not in self._tags_with_metadata
        if first:
            value.metadata.CopyFrom(
                summary_pb2.SummaryMetadata(
                    display_name=display_name or tag,
                    summary_description=description or "",
                    plugin_data=summary_pb2.SummaryMetadata.PluginData(
                        plugin_name=plugin_name,
                        content=encoded.encode("utf-8"),
                    ),
                    data_class=summary_pb2.DATA_CLASS_TENSOR,
                )
            )
        self._write(value, step)
        if first:
            self._tags_with_metadata.add(tag)

    def flush(self):
        if not self._closed and self._writer is not None:
            self._writer.flush()

    def close(self):
        if not self._closed:
            if self._writer is not None:
                self._writer.close()
            self._closed = True
            with _WRITERS_LOCK:
                if _WRITERS.get(os.path.abspath(self.logdir)) is self:
                    del _WRITERS[os.path.abspath(self.logdir)]

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def writer_for(logdir):
    """The open `SummaryWriter` of a folder, shared within the process.

    Callbacks that log to the same run folder append to one event file
    instead of each opening its own. In a distributed job only the chief
    process writes (JAX process 0, the chief worker of a `tf.distribute`
    strategy, `torch.distributed` rank 0); the others get a disabled writer.
    """
    if not isinstance(logdir, (str, os.PathLike)):
        raise TypeError(
            f"Argument `logdir` must be a path. Received: logdir={logdir!r}"
        )
    key = os.path.abspath(os.fspath(logdir))
    with _WRITERS_LOCK:
        writer = _WRITERS.get(key)
        if writer is None or writer._closed:
            # Imported here: reading logs (the dashboards) needs no backend.
            from keras_heuristics import _backend

            writer = SummaryWriter(key, enabled=_backend.is_chief())
            _WRITERS[key] = writer
        return writer
