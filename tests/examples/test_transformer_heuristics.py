"""The transformer example end to end at a tiny scale, its language, and its
bad input.

The tiny form runs once, one seed (a module fixture). The summaries are
recomputed here from the cells' numbers (intervals with SciPy, settling
steps and barriers with NumPy): the run's own, and the example's
`summarize` over the cells shifted into three seeds, which gives every
interval a spread. The loss along the line is checked at its ends against
the example's own per-token loss; a second run must read every cell back
without training again.
"""

import json
import math
import os

import numpy as np
import pytest

from examples import transformer_heuristics as th
from tests.examples.test_reproductions import _cell_results
from tests.examples.test_reproductions import _check_ci
from tests.examples.test_reproductions import _mtimes

pytest.importorskip("keras_hub")

TINY = dict(
    words=8,
    successors=2,
    sequence_length=8,
    train_sentences=64,  # 2 steps an epoch
    validation_sentences=32,
    layers=2,
    width=8,
    heads=2,
    student_layers=1,
    student_width=4,
    batch_size=32,
    epochs=2,
    similarity_every=1,
    finetune_epochs=1,
    curve_points=3,
)
OPTIONS = dict(seeds=1, workers=1, verbose=0, params=TINY)


def _settling(steps, values, share=0.1):
    """The first step from which `values` stay near their last value."""
    values = np.asarray(values)
    tolerance = share * abs(values[-1] - values[0])
    for i in range(len(values)):
        if np.all(np.abs(values[i:] - values[-1]) <= tolerance):
            return steps[i]


def _barrier(losses):
    return max(losses) - (losses[0] + losses[-1]) / 2


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One seed of the tiny form, run once for the tests below: its four
    cells build and compile about fifteen small models (the library's
    keras-hub support is tested on all three backends in
    tests/*/test_transformers.py)."""
    root = str(tmp_path_factory.mktemp("transformer"))
    out = th.run(root, **OPTIONS)
    return root, out, _cell_results(root, "transformer")


def _check_summary(summary, warmup, connect, distill):
    """Every interval, mean and difference of `summary`, recomputed from
    the cells' numbers (per seed) with SciPy and NumPy."""
    seeds = range(len(distill))
    for name in ("wsd", "no_warmup"):
        results = warmup[name]
        entry = summary["warmup"][name]
        losses = [r["validation_loss"] for r in results]
        _check_ci(entry["validation_loss"], losses)
        _check_ci(entry["perplexity"], np.exp(losses))
        for block in range(2):
            _check_ci(
                entry["final_cka"][block],
                [r["cka"][block][-1] for r in results],
            )
            _check_ci(
                entry["settling_step"][block],
                [r["settling_step"][block] for r in results],
            )
        _check_ci(
            entry["top_minus_bottom_settling"],
            [r["settling_step"][-1] - r["settling_step"][0] for r in results],
        )
    _check_ci(
        summary["warmup_gain"],
        [
            warmup["no_warmup"][s]["validation_loss"]
            - warmup["wsd"][s]["validation_loss"]
            for s in seeds
        ],
    )
    for block in range(2):
        _check_ci(
            summary["final_cka_wsd_minus_no_warmup"][block],
            [
                warmup["wsd"][s]["cka"][block][-1]
                - warmup["no_warmup"][s]["cka"][block][-1]
                for s in seeds
            ],
        )
    c = summary["connectivity"]
    _check_ci(
        c["endpoint_loss"], [np.mean(r["endpoint_loss"]) for r in connect]
    )
    for key in ("pretrained_loss", "distance", "line_barrier", "curve_barrier"):
        _check_ci(c[key], [r[key] for r in connect])
    for path in ("line", "curve"):
        excess = [
            max(
                np.asarray(r[f"{path}_loss"])
                - np.interp(
                    r["t"], [0, 1], [r[f"{path}_loss"][k] for k in (0, -1)]
                )
            )
            for r in connect
        ]
        _check_ci(c[f"{path}_excess"], excess)
        _check_ci(
            c[f"{path}_lowest_loss"],
            [min(r[f"{path}_loss"]) for r in connect],
        )
    _check_ci(
        c["line_minus_curve_barrier"],
        [r["line_barrier"] - r["curve_barrier"] for r in connect],
    )
    d = summary["distillation"]
    for key in ("teacher_loss", "distilled_loss", "alone_loss"):
        _check_ci(d[key], [r[key] for r in distill])
    _check_ci(
        d["alone_minus_distilled"],
        [r["alone_loss"] - r["distilled_loss"] for r in distill],
    )


def _by_part(cells, seeds):
    warmup = {
        name: [cells[f"{name}/seed{s}.json"] for s in seeds]
        for name in ("wsd", "no_warmup")
    }
    connect = [cells[f"connectivity/seed{s}.json"] for s in seeds]
    distill = [cells[f"distillation/seed{s}.json"] for s in seeds]
    return warmup, connect, distill


@pytest.mark.slow
@pytest.mark.only_backends("jax")
def test_tiny_run_cells(tiny_run):
    root, out, cells = tiny_run
    assert len(cells) == 4
    warmup, connect, distill = _by_part(cells, [0])
    for r in warmup["wsd"] + warmup["no_warmup"]:
        # 4 steps, a similarity point at each, after the initial one
        assert r["steps"] == [0, 1, 2, 3, 4]
        assert np.shape(r["cka"]) == (2, 5)
        np.testing.assert_allclose(np.asarray(r["cka"])[:, 0], 1.0)
        assert r["settling_step"] == [
            _settling(r["steps"], row) for row in r["cka"]
        ]
    for r in connect:
        assert r["t"] == [0.0, 0.5, 1.0]
        assert r["distance"] > 0  # two data orders, two fine-tuned copies
        assert r["line_barrier"] == pytest.approx(_barrier(r["line_loss"]))
        assert r["curve_barrier"] == pytest.approx(_barrier(r["curve_loss"]))
        # Keras' masked loss in one batch = the NumPy mean over real tokens
        for losses in (r["line_loss"], r["curve_loss"]):
            np.testing.assert_allclose(
                [losses[0], losses[-1]], r["endpoint_loss"], rtol=1e-4
            )
    for r in distill:
        assert r["student_parameters"] < r["teacher_parameters"]
        # the teacher is the WSD run's model of the same seed
        assert r["teacher_loss"] == pytest.approx(
            warmup["wsd"][0]["validation_loss"], rel=1e-5
        )
    # one seed: the means are the cell's numbers, the intervals NaN
    _check_summary(out["summary"], *_by_part(cells, [0]))
    assert (
        os.path.getsize(os.path.join(root, "transformer_heuristics.png")) > 1000
    )
    assert os.path.exists(os.path.join(root, "results.json"))


@pytest.mark.slow
@pytest.mark.only_backends("jax")
def test_tiny_run_summary_over_seeds(tiny_run):
    # The run's cells stand for three seeds, their numbers shifted per
    # seed, so that every interval and paired difference has a spread to
    # check.
    _, out, cells = tiny_run
    rng = np.random.default_rng(0)
    seeded = {}
    for s in range(3):
        for key, record in cells.items():
            record = json.loads(json.dumps(record))
            for name, value in record.items():
                if name.endswith("_loss") and isinstance(value, float):
                    record[name] = value + rng.normal(0, 0.1)
                elif name in ("line_loss", "curve_loss"):
                    record[name] = list(
                        np.asarray(value) + rng.normal(0, 0.1, len(value))
                    )
                elif name in ("distance", "line_barrier", "curve_barrier"):
                    record[name] = value + rng.uniform(0, 0.1)
                elif name == "cka":
                    record[name] = (
                        np.asarray(value) * rng.uniform(0.8, 1, (2, 1))
                    ).tolist()
                elif name == "settling_step":
                    record[name] = [
                        v + s * (i + 1) for i, v in enumerate(value)
                    ]
            seeded[key.replace("seed0", f"seed{s}")] = record
    warmup, connect, distill = _by_part(seeded, range(3))
    summary = th.summarize(warmup, connect, distill, out["params"])
    _check_summary(summary, warmup, connect, distill)


@pytest.mark.slow
@pytest.mark.only_backends("jax")
def test_tiny_run_resumes_without_training(tiny_run):
    root, out, _ = tiny_run
    before = _mtimes(root)
    again = th.run(root, **OPTIONS)
    assert _mtimes(root) == before  # nothing recomputed
    # NaN intervals (one seed) compare equal as JSON text
    assert json.dumps(again["summary"]) == json.dumps(out["summary"])


def test_language_follows_its_chain():
    params = dict(th.configurations(quick=True), words=5, successors=2)
    table = th.transitions(5, 2, seed=3)
    # each context: 2 successors, probabilities summing to 1
    assert np.all((table > 0).sum(-1) == 2)
    np.testing.assert_allclose(table.sum(-1), 1.0)
    x, y, p = th.sentences(table, 400, 12, seed=4)
    ids = np.concatenate([x["token_ids"][:, :1], y], axis=1)
    lengths = (ids != th.PAD).sum(1)
    assert lengths.min() == 7 and lengths.max() == 13  # 6 to 12 words
    np.testing.assert_array_equal(x["padding_mask"], x["token_ids"] != 0)
    assert np.all(ids[:, 0] == th.BOS)
    # the recorded probability of each target is the table's
    for i in range(20):
        for t in range(2, lengths[i]):
            a = 5 if t == 2 else ids[i, t - 2] - 2
            b, c = ids[i, t - 1] - 2, ids[i, t] - 2
            assert p[i, t - 1] == table[a, b, c]
    real = y != th.PAD
    assert th.best_loss(y, p) == pytest.approx(-np.log(p[real]).mean())
    # the dialect keeps about half the contexts and redraws the others
    dialect = th.transitions(5, 2, seed=4, share=0.5, base=table)
    kept = np.all(dialect == table, axis=-1).mean()
    assert 0.2 < kept < 0.8
    # the default language: the chain's loss is far below uniform guessing
    (_, _, _), (_, y_val, p_val) = th.language(params)
    assert th.best_loss(y_val, p_val) < 0.5 * math.log(params["words"])


def test_epochs_of_are_permutations():
    x = {"token_ids": np.arange(10)[:, None], "padding_mask": np.ones((10, 1))}
    xs, ys = th.epochs_of(x, np.arange(10), 3, seed=0)
    assert len(ys) == 30
    np.testing.assert_array_equal(xs["token_ids"][:, 0], ys)
    for k in range(3):
        assert sorted(ys[10 * k : 10 * (k + 1)]) == list(range(10))
    assert not np.array_equal(ys[:10], ys[10:20])
    _, again = th.epochs_of(x, np.arange(10), 3, seed=0)
    np.testing.assert_array_equal(again, ys)


@pytest.mark.parametrize(
    "options, words",
    [
        ({"params": {"epochs": 0}}, "epochs"),
        ({"params": {"successors": 30}}, "successors"),
        ({"params": {"width": 9}}, "multiple of `heads`"),
        ({"params": {"alpha": 0.0}}, "alpha"),
        ({"params": {"peak_rate": -1.0}}, "peak_rate"),
        ({"params": {"warmup_share": 0.6, "decay_share": 0.6}}, "share"),
        ({"params": {"curve_points": 2}}, "curve_points"),
        ({"params": {"depth": 3}}, "unknown keys"),
        ({"seeds": 0}, "seeds"),
        ({"quick": "yes"}, "quick"),
    ],
)
def test_bad_input_is_refused_before_any_cell(tmp_path, options, words):
    with pytest.raises((TypeError, ValueError), match=words):
        th.run(str(tmp_path / "out"), verbose=0, **options)
    assert not os.path.exists(tmp_path / "out")
