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
