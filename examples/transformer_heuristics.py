"""Warmup, layer similarity, mode connectivity and distillation on a tiny LM.

A keras-hub GPT-2 causal LM, built from a config with random weights (no
download), learns a synthetic language generated here: sentences of a
second-order Markov chain over a small vocabulary, of varying lengths and
padded, whose true next-token probabilities are known, so that the best
possible loss (the chain's conditional entropy on the validation text) is
printed next to every measured one. Per seed:

- **Warmup.** The same model trained with a warmup-stable-decay rate
  (`keras_heuristics.schedules.WarmupStableDecay`) and with the same
  schedule without its warmup, at a high peak rate: validation loss and
  perplexity, and their paired difference.
- **Layer similarity.** `keras_heuristics.callbacks.LayerSimilarity`
  measures each transformer block's linear CKA to its initial state over
  training (mean over the real tokens of a fixed probe). A block "settles"
  at the step from which it stays within 10% of its total change; the
  question is whether lower blocks settle first (Gotmare et al.: warmup
  keeps the deeper layers from moving early).
- **Mode connectivity.** Two copies of the warmup run's model are
  fine-tuned on a "dialect" of the language (a share of its contexts
  redrawn) with different data orders; the validation loss is measured
  along the straight line between them and along a trained quadratic
  Bezier curve (`keras_heuristics.CurveModel`), and the barrier
  `max_t L(t) - (L(0) + L(1)) / 2` of each is reported, with the excess
  over the chord between the ends and the lowest loss on each path.
- **Distillation.** A smaller GPT-2 is trained from one initialisation
  twice: on the labels alone and by `keras_heuristics.Distiller` from the
  warmup run's model (Hinton's loss, per-token weights that drop the
  padding): validation loss of both and their paired difference.

    python -m examples.transformer_heuristics --logdir runs/transformer
    python -m examples.transformer_heuristics --quick   # a short run
    tensorboard --logdir runs/transformer

References:
    Gotmare, Keskar, Xiong and Socher, "A Closer Look at Deep Learning
    Heuristics: Learning rate restarts, Warmup and Distillation", ICLR 2019.
    Hu et al., "MiniCPM", 2024 (warmup-stable-decay). Garipov et al., "Loss
    Surfaces, Mode Connectivity, and Fast Ensembling of DNNs", NeurIPS 2018.
"""

import math
import os

import keras
import numpy as np

from examples import cells as cells_lib
from examples import common
from examples import stats
from keras_heuristics import callbacks
from keras_heuristics import connectivity
from keras_heuristics import tensorboard
from keras_heuristics.distillation import Distiller
from keras_heuristics.schedules import WarmupStableDecay

EXPERIMENT = "transformer"
PAD, BOS = 0, 1  # token ids; the words are 2, 3, ...
# A block has settled once it stays within this share of its total change
# (from its initial state to its final one) of its final similarity.
SETTLED = 0.1


def configurations(quick=False):
    """The language, the models and the training of each part.

    Language: 24 words, each pair of words followed by one of 3 words
    (Dirichlet(1) probabilities), sentences of 16 to 32 tokens after a
    start token; 2,000 training sentences and 256 validation ones; the
    dialect redraws the successors of half the contexts. Model: GPT-2 with
    4 blocks of width 32 (2 heads, 64 hidden units), no dropout; student:
    2 blocks of width 16. Adam, batch 32, 12 epochs (6 quick) with a peak
    rate of 1e-2 (the rate where dropping the warmup starts to cost, see
    the README); WSD with 10% warmup and a 1-sqrt cooldown over the last
    20%. Fine-tuning and the curve: 3 epochs (2 quick) at a constant
    1e-3, the curve evaluated at 11 points.
    Distillation: temperature 2, weight 0.5 on the KD term, the
    schedule of the warmup run.
    """
    return dict(
        words=24,
        successors=3,
        sequence_length=32,
        train_sentences=2000,
        validation_sentences=256,
        dialect_share=0.5,
        language_seed=1234,
        layers=4,
        width=32,
        heads=2,
        student_layers=2,
        student_width=16,
        batch_size=32,
        epochs=6 if quick else 12,
        peak_rate=1e-2,
        warmup_share=0.1,
        decay_share=0.2,
        similarity_every=25,
        finetune_epochs=2 if quick else 3,
        finetune_rate=1e-3,
        curve_points=11,
        temperature=2.0,
        alpha=0.5,
    )


def check_params(params):
    """Refuses impossible settings before any training."""
    common.check_param_integers(
        params,
        (
            "words",
            "successors",
            "sequence_length",
            "train_sentences",
            "validation_sentences",
            "layers",
            "width",
            "heads",
            "student_layers",
            "student_width",
            "batch_size",
            "epochs",
            "similarity_every",
            "finetune_epochs",
        ),
    )
    common.check_param_integers(params, ("language_seed",), minimum=0)
    common.check_param_integers(params, ("curve_points",), minimum=3)
    common.check_param_positive(
        params, ("peak_rate", "finetune_rate", "temperature")
    )
    if params["successors"] > params["words"]:
        raise ValueError(
            "Parameter `successors` must be <= `words`. Received: "
            f"successors={params['successors']}, words={params['words']}"
        )
    if params["sequence_length"] < 4:
        raise ValueError(
            "Parameter `sequence_length` must be >= 4. Received: "
            f"sequence_length={params['sequence_length']}"
        )
    for key in ("width", "student_width"):
        if params[key] % params["heads"]:
            raise ValueError(
                f"Parameter `{key}` must be a multiple of `heads`. Received: "
                f"{key}={params[key]}, heads={params['heads']}"
            )
    for key, low, high in (
        ("dialect_share", 0.0, 1.0),
        ("alpha", 0.0, 1.0),
        ("warmup_share", 0.0, 1.0),
        ("decay_share", 0.0, 1.0),
    ):
        value = params[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not low < value <= high
        ):
            raise ValueError(
                f"Parameter `{key}` must be in ({low}, {high}]. Received: "
                f"{key}={value!r}"
            )
    if params["warmup_share"] + params["decay_share"] > 1:
        raise ValueError(
            "Parameters `warmup_share` + `decay_share` must be <= 1. "
            f"Received: {params['warmup_share']} + {params['decay_share']}"
        )
    return params


# ----------------------------------------------------------------------
# The language


def transitions(words, successors, seed, share=0.0, base=None):
    """A second-order chain: `P[a, b]` is the law of the word after `a, b`.

    Contexts `a` run over the words and the start token (index `words`),
    `b` over the words. Each context has `successors` possible next words
    with Dirichlet(1) probabilities. With `base`, a `share` of its
    contexts are redrawn (the dialect) and the others kept.
    """
    rng = np.random.default_rng(seed)
    table = np.zeros((words + 1, words, words))
    for a in range(words + 1):
        for b in range(words):
            chosen = rng.choice(words, successors, replace=False)
            table[a, b, chosen] = rng.dirichlet(np.ones(successors))
    if base is not None:
        redraw = rng.random((words + 1, words)) < share
        table = np.where(redraw[..., None], table, base)
    return table


def sentences(table, count, length, seed):
    """`count` padded sentences and the true probability of each target.

    A sentence is the start token and `length // 2` to `length` words (a
    uniformly drawn word, then words of the chain), padded with 0 to
    `length + 1` tokens. Returns `(x, y, p)`: the inputs
    `{"token_ids", "padding_mask"}` (the first `length` tokens), the
    targets (the next tokens, 0 at padding) and the chain's probability of
    each real target (1 at padding).
    """
    words = table.shape[1]
    rng = np.random.default_rng(seed)
    ids = np.zeros((count, length + 1), "int32")
    p = np.ones((count, length))
    for i in range(count):
        n = int(rng.integers(length // 2, length + 1))
        ids[i, 0] = BOS
        context, word = words, int(rng.integers(words))
        ids[i, 1] = word + 2
        p[i, 0] = 1.0 / words
        for t in range(2, n + 1):
            law = table[context, word]
            context, word = word, int(rng.choice(words, p=law))
            ids[i, t] = word + 2
            p[i, t - 1] = law[word]
    mask = ids[:, :-1] != PAD
    x = {"token_ids": ids[:, :-1], "padding_mask": mask}
    return x, ids[:, 1:], p


def language(params, dialect=False):
    """`(train, validation)` of `(x, y, p)` for the language or dialect."""
    words, successors = params["words"], params["successors"]
    seed = params["language_seed"]
    table = transitions(words, successors, seed)
    if dialect:
        table = transitions(
            words, successors, seed + 1, params["dialect_share"], table
        )
    length = params["sequence_length"]
    offset = 10 if dialect else 0
    train = sentences(table, params["train_sentences"], length, seed + offset)
    validation = sentences(
        table, params["validation_sentences"], length, seed + offset + 1
    )
    return train, validation


def best_loss(y, p):
    """The chain's own loss: mean `-log p(target)` over real targets."""
    real = y != PAD
    return float(-np.mean(np.log(p[real])))


# ----------------------------------------------------------------------
# Models and training


def gpt2(params, seed, student=False):
    """A GPT-2 causal LM from a config, random weights, ids in."""
    import keras_hub

    keras.utils.set_random_seed(seed)
    prefix = "student_" if student else ""
    width = params[f"{prefix}width"]
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=params["words"] + 2,
        num_layers=params[f"{prefix}layers"],
        num_heads=params["heads"],
        hidden_dim=width,
        intermediate_dim=2 * width,
        max_sequence_length=params["sequence_length"],
        dropout=0.0,
    )
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def blocks(model):
    """The nested paths of the transformer blocks."""
    return [
        f"{model.backbone.name}/transformer_layer_{i}"
        for i in range(model.backbone.num_layers)
    ]


def _loss():
    """Mean cross-entropy over the real targets (padding is id 0)."""
    return keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=PAD
    )


def token_loss(model, x, y, batch_size=256):
    """Mean cross-entropy of `model` over the real targets, in NumPy."""
    logits = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    logits = logits.astype("float64")
    logits -= logits.max(axis=-1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_p, y[..., None], axis=-1)[..., 0]
    real = y != PAD
    return float(-np.mean(picked[real]))


def _steps(params, epochs):
    return math.ceil(params["train_sentences"] * epochs / params["batch_size"])


def epochs_of(x, y, epochs, seed):
    """`epochs` passes over `(x, y)`, each in its own random order, as one
    pass of arrays.

    keras-hub's `fit` batches arrays in their given order without
    shuffling, so the order is drawn here (by `seed`: the runs compared
    at one seed see the same batches), and one `fit` epoch then covers
    them all.
    """
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(y)) for _ in range(epochs)])
    return {k: v[order] for k, v in x.items()}, y[order]


def wsd(params, warmup=True):
    """The warmup-stable-decay rate; without warmup, the same stable and
    decay phases from step 0."""
    total = _steps(params, params["epochs"])
    decay = max(1, round(params["decay_share"] * total))
    ramp = round(params["warmup_share"] * total) if warmup else 0
    return WarmupStableDecay(
        params["peak_rate"],
        warmup_steps=ramp,
        stable_steps=total - decay - ramp,
        decay_steps=decay,
    )


def save_weights(model, path):
    """The model's weights (no optimizer state), written atomically."""
    temporary = f"{path}.tmp.npz"
    np.savez(temporary, *model.get_weights())
    os.replace(temporary, path)


def load_weights(model, path):
    with np.load(path) as stored:
        model.set_weights([stored[f"arr_{i}"] for i in range(len(stored))])
    return model


def _finite(value):
    return value if math.isfinite(value) else None


def settling_step(steps, values, settled=SETTLED):
    """The first step from which `values` stay within `settled` of their
    total change of their last value (None for a flat series)."""
    values = np.asarray(values, float)
    change = abs(values[-1] - values[0])
    if not np.all(np.isfinite(values)) or change == 0:
        return None
    outside = np.nonzero(np.abs(values - values[-1]) > settled * change)[0]
    return int(steps[outside[-1] + 1 if len(outside) else 0])


def run_warmup_cell(cell, cell_dir):
    """Trains the LM with or without warmup, tracking block similarity."""
    common.fresh_folders(cell_dir)
    keras.utils.clear_session()  # the same layer names in every cell
    params = cell.kwargs["params"]
    warmup = cell.kwargs["warmup"]
    (x, y, _), (x_val, y_val, p_val) = language(params)
    model = gpt2(params, cell.seed)
    model.compile(
        optimizer=keras.optimizers.Adam(wsd(params, warmup)), loss=_loss()
    )
    probe = {k: v[:256] for k, v in x_val.items()}
    similarity = callbacks.LayerSimilarity(
        probe,
        layers=blocks(model),
        metric="linear_cka",
        reference="initial",
        log_dir=cell_dir,
        every_n_steps=params["similarity_every"],
        name="cka_to_initial",
    )
    history = model.fit(
        *epochs_of(x, y, params["epochs"], cell.seed),
        batch_size=params["batch_size"],
        shuffle=False,
        callbacks=[similarity, callbacks.MetricsLogger(cell_dir)],
        verbose=0,
    )
    path = os.path.join(cell_dir, "weights.npz")
    save_weights(model, path)
    # Step 0: every block is its initial state (CKA 1).
    steps = [0] + [int(s) for s in similarity.steps]
    values = np.asarray(similarity.values, float)
    values = np.concatenate([np.ones((len(values), 1)), values], axis=1)
    loss = token_loss(model, x_val, y_val)
    return {
        "warmup": warmup,
        "weights": path,
        "train_loss": _finite(float(history.history["loss"][-1])),
        "validation_loss": _finite(loss),
        "best_loss": best_loss(y_val, p_val),
        "steps": steps,
        "cka": values.tolist(),
        "settling_step": [settling_step(steps, v) for v in values],
    }


def _fit_finetune(model, params, x, y, seed):
    """Constant-rate Adam over `finetune_epochs`, data order by `seed`."""
    model.compile(
        optimizer=keras.optimizers.Adam(params["finetune_rate"]), loss=_loss()
    )
    model.fit(
        *epochs_of(x, y, params["finetune_epochs"], seed),
        batch_size=params["batch_size"],
        shuffle=False,
        verbose=0,
    )


def run_connectivity_cell(cell, cell_dir):
    """Two fine-tuned copies of one start; the line and a Bezier curve."""
    common.fresh_folders(cell_dir)
    keras.utils.clear_session()
    params = cell.kwargs["params"]
    (x, y, _), (x_val, y_val, p_val) = language(params, dialect=True)
    copies = []
    for k in range(2):
        model = load_weights(
            gpt2(params, cell.seed), cell.kwargs["start_weights"]
        )
        _fit_finetune(model, params, x, y, 1000 * cell.seed + k)
        copies.append(model)
    pretrained = load_weights(
        gpt2(params, cell.seed), cell.kwargs["start_weights"]
    )
    start_loss = token_loss(pretrained, x_val, y_val)
    evaluation = dict(
        loss=_loss(),
        metrics=[],
        num_points=params["curve_points"],
        batch_size=len(y_val),  # one batch: the exact mean over tokens
        verbose=0,
    )
    line = connectivity.evaluate_line(
        copies[0], copies[1], x_val, y_val, **evaluation
    )
    curve = connectivity.CurveModel(
        copies[0], copies[1], curve="bezier", num_bends=1, seed=cell.seed
    )
    _fit_finetune(curve, params, x, y, 1000 * cell.seed + 2)
    bezier = connectivity.evaluate_curve(curve, x_val, y_val, **evaluation)
    return {
        "t": line.t.tolist(),
        "pretrained_loss": start_loss,
        "endpoint_loss": [token_loss(m, x_val, y_val) for m in copies],
        "best_loss": best_loss(y_val, p_val),
        "distance": float(connectivity.distance(copies[0], copies[1])),
        "line_loss": line.metrics["loss"].tolist(),
        "curve_loss": bezier.metrics["loss"].tolist(),
        "line_barrier": line.barrier("loss"),
        "curve_barrier": bezier.barrier("loss"),
    }


def run_distillation_cell(cell, cell_dir):
    """A small GPT-2 distilled from the warmup run's model, and alone."""
    common.fresh_folders(cell_dir)
    keras.utils.clear_session()
    params = cell.kwargs["params"]
    (x, y, _), (x_val, y_val, p_val) = language(params)
    teacher = load_weights(
        gpt2(params, cell.seed), cell.kwargs["teacher_weights"]
    )
    distilled = gpt2(params, 100 + cell.seed, student=True)
    alone = gpt2(params, 100 + cell.seed, student=True)
    distilled(x_val), alone(x_val)
    alone.set_weights(distilled.get_weights())
    x, y = epochs_of(x, y, params["epochs"], cell.seed)  # the same order
    fit = dict(batch_size=params["batch_size"], shuffle=False, verbose=0)
    distiller = Distiller(
        teacher,
        distilled,
        temperature=params["temperature"],
        alpha=params["alpha"],
    )
    # Both students: the padding weighs nothing through per-token sample
    # weights (in the KD term too), with a plain cross-entropy rather than
    # `_loss()`: weighted, both terms sum over the real tokens and divide
    # by all positions, so `alpha` weighs them alike per token, whereas
    # `ignore_class=PAD` would divide the student term by the real tokens
    # alone, a factor that changes with each batch's padding.
    weights = (y != PAD).astype("float32")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    distiller.compile(optimizer=keras.optimizers.Adam(wsd(params)), loss=loss)
    distiller.fit(
        x, y, sample_weight=weights, cache_teacher_outputs=True, **fit
    )
    alone.compile(optimizer=keras.optimizers.Adam(wsd(params)), loss=loss)
    alone.fit(x, y, sample_weight=weights, **fit)
    return {
        "teacher_loss": token_loss(teacher, x_val, y_val),
        "distilled_loss": _finite(token_loss(distilled, x_val, y_val)),
        "alone_loss": _finite(token_loss(alone, x_val, y_val)),
        "best_loss": best_loss(y_val, p_val),
        "student_parameters": int(distilled.count_params()),
        "teacher_parameters": int(teacher.count_params()),
    }


# ----------------------------------------------------------------------
# Summaries


def _values(results, key):
    return [math.nan if r[key] is None else r[key] for r in results]


def summarize(warmup, connect, distill, params):
    """Means with 95% intervals over seeds, and paired differences.

    Args:
        warmup: `{"wsd": [result per seed], "no_warmup": [...]}`.
        connect: `[result per seed]` of the connectivity cells.
        distill: `[result per seed]` of the distillation cells.
        params: The configuration.
    """
    summary = {"best_loss": warmup["wsd"][0]["best_loss"], "warmup": {}}
    for name, results in warmup.items():
        losses = _values(results, "validation_loss")
        entry = {
            "validation_loss": stats.mean_ci(losses),
            "perplexity": stats.mean_ci(np.exp(losses)),
            "final_cka": [],
            "settling_step": [],
        }
        for i in range(params["layers"]):
            entry["final_cka"].append(
                stats.mean_ci([r["cka"][i][-1] for r in results])
            )
            entry["settling_step"].append(
                stats.mean_ci(
                    [
                        math.nan
                        if r["settling_step"][i] is None
                        else r["settling_step"][i]
                        for r in results
                    ]
                )
            )
        # Lower blocks first: top block's settling step minus the bottom's.
        entry["top_minus_bottom_settling"] = stats.difference_ci(
            _block_steps(results, -1), _block_steps(results, 0)
        )
        summary["warmup"][name] = entry
    summary["warmup_gain"] = stats.difference_ci(
        _values(warmup["no_warmup"], "validation_loss"),
        _values(warmup["wsd"], "validation_loss"),
    )
    summary["final_cka_wsd_minus_no_warmup"] = [
        stats.difference_ci(
            [r["cka"][i][-1] for r in warmup["wsd"]],
            [r["cka"][i][-1] for r in warmup["no_warmup"]],
        )
        for i in range(params["layers"])
    ]
    summary["connectivity"] = {
        "best_loss": connect[0]["best_loss"],
        "pretrained_loss": stats.mean_ci(_values(connect, "pretrained_loss")),
        "endpoint_loss": stats.mean_ci(
            [float(np.mean(r["endpoint_loss"])) for r in connect]
        ),
        "distance": stats.mean_ci(_values(connect, "distance")),
        "line_barrier": stats.mean_ci(_values(connect, "line_barrier")),
        "curve_barrier": stats.mean_ci(_values(connect, "curve_barrier")),
        "line_minus_curve_barrier": stats.difference_ci(
            _values(connect, "line_barrier"), _values(connect, "curve_barrier")
        ),
    }
    # The barrier is at least half the gap between the ends; the excess
    # over the chord, max_t [L(t) - ((1 - t) L(0) + t L(1))], and the
    # lowest loss on each path tell a bump from a valley.
    for path in ("line", "curve"):
        excess = [
            connectivity.interpolated_barrier_height(r["t"], r[f"{path}_loss"])
            for r in connect
        ]
        summary["connectivity"][f"{path}_excess"] = stats.mean_ci(excess)
        summary["connectivity"][f"{path}_lowest_loss"] = stats.mean_ci(
            [min(r[f"{path}_loss"]) for r in connect]
        )
    summary["distillation"] = {
        "teacher_loss": stats.mean_ci(_values(distill, "teacher_loss")),
        "distilled_loss": stats.mean_ci(_values(distill, "distilled_loss")),
        "alone_loss": stats.mean_ci(_values(distill, "alone_loss")),
        "alone_minus_distilled": stats.difference_ci(
            _values(distill, "alone_loss"), _values(distill, "distilled_loss")
        ),
        "student_parameters": distill[0]["student_parameters"],
        "teacher_parameters": distill[0]["teacher_parameters"],
    }
    return summary


def _block_steps(results, block):
    return [
        math.nan
        if r["settling_step"][block] is None
        else r["settling_step"][block]
        for r in results
    ]


def _plot(summary, warmup, connect, path):
    """Similarity over training, the loss along line and curve, losses."""
    plt = common.pyplot()
    figure, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    for axis, name in zip(axes[:2], ("wsd", "no_warmup")):
        results = warmup[name]
        steps = np.asarray(results[0]["steps"])
        cka = np.mean([r["cka"] for r in results], axis=0)
        for i, row in enumerate(cka):
            axis.plot(steps, row, color=f"C{i}", label=f"block {i}")
        axis.set_xlabel("optimizer step")
        axis.set_ylabel("linear CKA to the initial block")
        title = "with warmup (WSD)" if name == "wsd" else "without warmup"
        axis.set_title(f"{title}, mean of {len(results)} seeds")
        axis.set_ylim(0, 1.02)
        axis.legend(fontsize=8)
    axis = axes[2]
    t = np.asarray(connect[0]["t"])
    for key, color, label in (
        ("line_loss", "C3", "line"),
        ("curve_loss", "C0", "Bezier curve"),
    ):
        values = np.array([r[key] for r in connect])
        axis.plot(t, values.mean(axis=0), color=color, label=label)
        for row in values:
            axis.plot(t, row, color=color, lw=0.5, alpha=0.4)
    axis.axhline(
        summary["connectivity"]["best_loss"],
        color="grey",
        ls=":",
        label="chain's own loss",
    )
    axis.set_xlabel("t (fine-tuned copy A at 0, B at 1)")
    axis.set_ylabel("validation loss (dialect)")
    axis.set_title("between two fine-tuned copies")
    axis.legend(fontsize=8)
    axis = axes[3]
    d = summary["distillation"]
    w = summary["warmup"]
    entries = [
        ("LM, WSD", w["wsd"]["validation_loss"]),
        ("LM, no warmup", w["no_warmup"]["validation_loss"]),
        ("student alone", d["alone_loss"]),
        ("student distilled", d["distilled_loss"]),
    ]
    common.ci_errorbar(
        axis,
        np.arange(len(entries)),
        [e[1] for e in entries],
        color="C0",
        linestyle="none",
    )
    axis.axhline(
        summary["best_loss"], color="grey", ls=":", label="chain's own loss"
    )
    axis.set_xticks(range(len(entries)))
    axis.set_xticklabels([e[0] for e in entries], fontsize=8)
    axis.set_ylabel("validation loss (nats per token)")
    axis.set_title("validation loss (mean, 95% CI)")
    axis.legend(fontsize=8)
    figure.tight_layout()
    common.save_figure(
        figure,
        path,
        tensorboard.writer_for(os.path.dirname(path)),
        "transformer_heuristics",
    )


# ----------------------------------------------------------------------
# Entry point


def run(logdir, quick=False, seeds=None, workers=None, verbose=1, params=None):
    """Runs the three parts over seeds and writes `results.json`.

    The warmup cells (with and without warmup) run first; the
    connectivity and distillation cells of a seed then start from that
    seed's warmup-run model. Every cell's result is written atomically as
    it finishes, and a rerun computes only the missing ones.

    Args:
        logdir: Output folder: the cells' results and logs, `results.json`
            and `transformer_heuristics.png`.
        quick: A short run (6 epochs instead of 12, 2 fine-tuning epochs
            instead of 3, 2 seeds): the warmup and distillation gaps show
            in direction, with wide intervals.
        seeds: Seeds per configuration (5; 2 quick).
        workers: Parallel cell processes (default: the CPU count).
        verbose: 1 shows progress bars over the cells.
        params: Values replacing the configuration's (see
            `configurations()`), e.g. `{"epochs": 6}`.

    Returns:
        The dict written to `results.json`.

    Raises:
        TypeError, ValueError: For a bad argument or parameter, before any
            training.
    """
    if not isinstance(quick, bool):
        raise TypeError(f"Argument `quick` must be a bool. Received: {quick!r}")
    if seeds is None:
        seeds = 2 if quick else 5
    seeds = common.check_seeds(seeds)
    params = check_params(common.override(configurations(quick), params))
    if verbose not in (0, 1):
        raise ValueError(
            f"Argument `verbose` must be 0 or 1. Received: {verbose!r}"
        )
    base = {"params": params}
    warmup_cells = [
        cells_lib.Cell(EXPERIMENT, name, seed, dict(base, warmup=name == "wsd"))
        for name in ("wsd", "no_warmup")
        for seed in range(seeds)
    ]
    done = cells_lib.run_cells(
        run_warmup_cell, warmup_cells, logdir, workers=workers, verbose=verbose
    )
    weights = {
        c.seed: done[c.key]["weights"]
        for c in warmup_cells
        if c.config == "wsd"
    }
    connect_cells = [
        cells_lib.Cell(
            EXPERIMENT,
            "connectivity",
            seed,
            dict(base, start_weights=weights[seed]),
        )
        for seed in range(seeds)
    ]
    distill_cells = [
        cells_lib.Cell(
            EXPERIMENT,
            "distillation",
            seed,
            dict(base, teacher_weights=weights[seed]),
        )
        for seed in range(seeds)
    ]
    connect = cells_lib.run_cells(
        run_connectivity_cell,
        connect_cells,
        logdir,
        workers=workers,
        verbose=verbose,
    )
    distill = cells_lib.run_cells(
        run_distillation_cell,
        distill_cells,
        logdir,
        workers=workers,
        verbose=verbose,
    )
    warmup = {
        name: [done[c.key] for c in warmup_cells if c.config == name]
        for name in ("wsd", "no_warmup")
    }
    connect = [connect[c.key] for c in connect_cells]
    distill = [distill[c.key] for c in distill_cells]
    summary = summarize(warmup, connect, distill, params)
    _plot(
        summary,
        warmup,
        connect,
        os.path.join(logdir, "transformer_heuristics.png"),
    )
    cells = warmup_cells + connect_cells + distill_cells
    output = {
        "experiment": EXPERIMENT,
        "quick": quick,
        "data": "generated second-order Markov language",
        "backend": keras.backend.backend(),
        "params": params,
        "seeds": seeds,
        "summary": summary,
        "seconds": common.cell_seconds(logdir, cells),
    }
    common.write_json(os.path.join(logdir, "results.json"), output)
    if verbose:
        print(report(summary))
    return output


def report(summary):
    """The summary as a few lines of text."""
    f = stats.format_ci
    w, c, d = (
        summary["warmup"],
        summary["connectivity"],
        summary["distillation"],
    )
    lines = [
        f"chain's own loss (validation): {summary['best_loss']:.3f}",
        f"validation loss, WSD: {f(w['wsd']['validation_loss'])}",
        f"validation loss, no warmup: {f(w['no_warmup']['validation_loss'])}",
        f"no warmup minus WSD: {f(summary['warmup_gain'])}",
    ]
    for name in ("wsd", "no_warmup"):
        steps = ", ".join(f"{s['mean']:.0f}" for s in w[name]["settling_step"])
        cka = ", ".join(f"{s['mean']:.2f}" for s in w[name]["final_cka"])
        lines.append(
            f"{name}: settling step per block {steps}; final CKA {cka}; top "
            f"minus bottom {f(w[name]['top_minus_bottom_settling'], 0)}"
        )
    lines += [
        f"fine-tuned copies: {f(c['endpoint_loss'])}",
        f"line barrier: {f(c['line_barrier'])}, excess over the chord "
        f"{f(c['line_excess'])}, lowest {f(c['line_lowest_loss'])}",
        f"curve barrier: {f(c['curve_barrier'])}, excess over the chord "
        f"{f(c['curve_excess'])}, lowest {f(c['curve_lowest_loss'])}",
        f"distilled student: {f(d['distilled_loss'])}",
        f"student alone: {f(d['alone_loss'])}",
        f"alone minus distilled: {f(d['alone_minus_distilled'])}",
    ]
    return "\n".join(lines)


def main():
    from absl import app
    from absl import flags

    flags.DEFINE_string("logdir", "runs/transformer", "Output folder.")
    flags.DEFINE_bool("quick", False, "A short run (6 epochs, 2 seeds).")
    flags.DEFINE_integer("seeds", None, "Seeds per configuration.")
    flags.DEFINE_integer("workers", None, "Parallel cells (CPU count).")

    def _main(argv):
        del argv
        f = flags.FLAGS
        run(f.logdir, quick=f.quick, seeds=f.seeds, workers=f.workers)

    app.run(_main)


if __name__ == "__main__":
    main()
