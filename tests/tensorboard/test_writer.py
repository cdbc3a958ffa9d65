import json
import zlib

import numpy as np
import pytest
from tensorboard.data import provider as base

from keras_heuristics.tensorboard import SummaryWriter
from keras_heuristics.tensorboard import encode_png
from keras_heuristics.tensorboard import write_similarity_matrix
from keras_heuristics.tensorboard import writer_for
from tests.tensorboard import _read


def test_scalars_read_back_by_tensorboard(tmp_path):
    with SummaryWriter(tmp_path / "train") as writer:
        for step in range(5):
            writer.scalar("loss", 1.0 / (step + 1), step)
    got = _read.scalars(tmp_path, "train", "loss")
    assert [s for s, _ in got] == list(range(5))
    np.testing.assert_allclose(
        [v for _, v in got], 1 / np.arange(1, 6), rtol=1e-6
    )


def test_images_read_back_as_png_blobs(tmp_path):
    image = np.zeros((4, 6, 3), np.uint8)
    image[1, 2] = [255, 0, 0]
    with SummaryWriter(tmp_path / "run") as writer:
        writer.image("picture", image, step=3)
    dp = _read.provider(tmp_path)
    blobs = dp.read_blob_sequences(
        _read.ctx(),
        experiment_id="",
        plugin_name="images",
        downsample=10,
        run_tag_filter=base.RunTagFilter(runs=["run"], tags=["picture"]),
    )
    (datum,) = blobs["run"]["picture"]
    assert datum.step == 3
    width, height, png = [
        dp.read_blob(_read.ctx(), blob_key=b.blob_key) for b in datum.values
    ]
    assert (int(width), int(height)) == (6, 4)
    assert png == encode_png(image)


def test_plugin_tensors_visible_to_data_provider(tmp_path):
    with SummaryWriter(tmp_path / "run") as writer:
        for step in range(3):
            write_similarity_matrix(
                writer,
                "svcca/vs_teacher",
                np.full((2, 3), step, "float32"),
                step,
                metric="svcca",
                rows=["a", "b"],
                cols=["x", "y", "z"],
            )
    dp = _read.provider(tmp_path)
    listing = dp.list_tensors(
        _read.ctx(), experiment_id="", plugin_name="layer_similarity"
    )
    meta = listing["run"]["layer_similarity/svcca/vs_teacher"]
    content = json.loads(meta.plugin_content)
    assert content["rows"] == ["a", "b"] and content["cols"] == ["x", "y", "z"]
    data = dp.read_tensors(
        _read.ctx(),
        experiment_id="",
        plugin_name="layer_similarity",
        downsample=100,
        run_tag_filter=base.RunTagFilter(runs=["run"]),
    )
    series = data["run"]["layer_similarity/svcca/vs_teacher"]
    assert [d.step for d in series] == [0, 1, 2]
    np.testing.assert_array_equal(series[2].numpy, np.full((2, 3), 2.0))


def test_png_decodes_to_the_same_pixels():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(5, 7, 4), dtype=np.uint8)
    png = encode_png(image)
    # Decode by hand: one IDAT chunk, filter byte 0 on every row.
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    start = png.index(b"IDAT") + 4
    length = int.from_bytes(png[start - 8 : start - 4], "big")
    raw = np.frombuffer(zlib.decompress(png[start : start + length]), np.uint8)
    rows = raw.reshape(5, 1 + 7 * 4)
    assert np.all(rows[:, 0] == 0)
    np.testing.assert_array_equal(rows[:, 1:].reshape(5, 7, 4), image)


def test_shared_writer_per_folder(tmp_path):
    a = writer_for(tmp_path / "x")
    assert writer_for(str(tmp_path / "x")) is a
    a.close()
    assert writer_for(tmp_path / "x") is not a


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda w: w.scalar("", 1.0, 0), TypeError, "tag"),
        (lambda w: w.scalar("loss", 1.0, -1), ValueError, "step"),
        (lambda w: w.image("img", np.zeros((2, 2, 2)), 0), ValueError, "image"),
        (
            lambda w: w.image("img", np.full((2, 2), 2.0), 0),
            ValueError,
            r"\[0, 1\]",
        ),
        (lambda w: w.image("img", b"GIF89a", 0), ValueError, "PNG"),
        (lambda w: w.tensor("t", ["a"], 0, "p"), TypeError, "numbers"),
        (lambda w: w.tensor("t", [1.0], 0, ""), TypeError, "plugin_name"),
    ],
)
def test_validation(tmp_path, call, error, match):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(error, match=match):
            call(writer)


def test_logdir_validation():
    with pytest.raises(TypeError, match="logdir"):
        SummaryWriter(3)


def test_writer_works_without_tensorflow(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from keras_heuristics.tensorboard import SummaryWriter\n"
        f"w = SummaryWriter({str(tmp_path)!r}); w.scalar('a', 1.0, 0)\n"
        "w.image('b', [[0.0, 1.0]], 0); w.close()\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={"KERAS_BACKEND": "jax", "PATH": ""},
    )
    assert _read.scalars(tmp_path, ".", "a") == [(0, 1.0)]


def _image_tags(logdir):
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={"images": 0}
    )
    events.Reload()
    return events.Tags()["images"]


@pytest.mark.parametrize(
    "data, match",
    [
        (b"\x89PNG", "signature"),
        (b"\x89PNG\r\n\x1a\n", "IHDR"),
        (encode_png(np.zeros((2, 3)))[:30], "IHDR"),
        # A flipped bit in the width: the IHDR checksum no longer matches.
        (
            encode_png(np.zeros((2, 3)))[:19]
            + b"\x07"
            + encode_png(np.zeros((2, 3)))[20:],
            "corrupt",
        ),
    ],
    ids=["signature", "no_ihdr", "short_ihdr", "bad_crc"],
)
def test_truncated_or_corrupt_png_writes_nothing(tmp_path, data, match):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(ValueError, match=f"`image`.*{match}"):
            writer.image("img", data, 1)
        writer.image("good", encode_png(np.zeros((2, 3, 4))), 1)
    assert _image_tags(tmp_path) == ["good"]


def test_png_bytes_record_their_size_and_channels(tmp_path):
    data = encode_png(np.zeros((2, 3, 4), np.uint8))
    with SummaryWriter(tmp_path) as writer:
        writer.image("img", data, 1)
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(
        str(tmp_path), size_guidance={"images": 0}
    )
    events.Reload()
    (image,) = events.Images("img")
    assert (image.width, image.height) == (3, 2)
    assert image.encoded_image_string == data


@pytest.mark.parametrize(
    "value, error, match",
    [
        (None, TypeError, "`value` must be a number"),
        ("abc", TypeError, "`value` must be a number"),
        (True, TypeError, "`value` must be a number, not a bool"),
        ([1, 2], ValueError, "`value` must be a scalar"),
        (np.array(["a"]), TypeError, "`value` must hold real numbers"),
        (10**400, ValueError, "`value` is too large"),
    ],
    ids=["none", "str", "bool", "list", "str_array", "huge_int"],
)
def test_scalar_value_errors_name_the_argument(tmp_path, value, error, match):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(error, match=match):
            writer.scalar("loss", value, 0)


def test_scalar_accepts_numpy_scalars_and_keeps_nan(tmp_path):
    with SummaryWriter(tmp_path / "run") as writer:
        writer.scalar("loss", np.float32(0.5), 0)
        writer.scalar("loss", np.array(2), 1)
        writer.scalar("loss", float("nan"), 2)
    got = _read.scalars(tmp_path, "run", "loss")
    assert [s for s, _ in got] == [0, 1, 2]
    assert got[0][1] == 0.5 and got[1][1] == 2.0 and np.isnan(got[2][1])


@pytest.mark.parametrize(
    "step, error",
    [(2**63, ValueError), (2**70, ValueError), (1.5, TypeError)],
    ids=["2**63", "2**70", "1.5"],
)
def test_step_must_fit_in_int64(tmp_path, step, error):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(error, match="`step`"):
            writer.scalar("loss", 1.0, step)
        with pytest.raises(error, match="`step`"):
            writer.image("img", np.zeros((2, 2)), step)
        with pytest.raises(error, match="`step`"):
            writer.tensor("t", [1.0], step, "p")
        writer.scalar("loss", 1.0, 2**63 - 1)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"array": [[1.0], [1.0, 2.0]]}, TypeError, "`array`"),
        ({"content": [1]}, TypeError, "`content`"),
        ({"content": {"x": float("nan")}}, ValueError, "`content`"),
        ({"content": {"x": object()}}, ValueError, "`content`"),
        ({"display_name": 3}, TypeError, "`display_name`"),
        ({"description": b"d"}, TypeError, "`description`"),
    ],
)
def test_tensor_errors_name_the_argument(tmp_path, kwargs, error, match):
    arguments = {"array": [1.0], "content": None}
    arguments.update(kwargs)
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(error, match=match):
            writer.tensor("t", step=0, plugin_name="p", **arguments)
        # The rejected call left the tag without metadata: the next
        # write of it still carries the plugin's content.
        writer.tensor("t", [1.0], 0, "p", content={"k": 1})
    dp = _read.provider(tmp_path)
    meta = dp.list_tensors(_read.ctx(), experiment_id="", plugin_name="p")
    (series,) = meta.values()
    assert json.loads(series["t"].plugin_content) == {"k": 1}


def test_flush_secs_and_a_file_as_logdir_are_refused_first(tmp_path):
    with pytest.raises(TypeError, match="flush_secs"):
        SummaryWriter(tmp_path / "run", flush_secs="x")
    with pytest.raises(ValueError, match="flush_secs"):
        SummaryWriter(tmp_path / "run", flush_secs=0)
    assert not (tmp_path / "run").exists()  # nothing created
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="`logdir` must be a folder"):
        SummaryWriter(tmp_path / "file")


def test_a_bfloat16_scalar_is_written(tmp_path):
    import keras

    value = keras.ops.cast(1.5, "bfloat16")  # exact in bfloat16
    with SummaryWriter(tmp_path / "train") as writer:
        writer.scalar("loss", value, 0)
    assert _read.scalars(tmp_path, "train", "loss") == [(0, 1.5)]
