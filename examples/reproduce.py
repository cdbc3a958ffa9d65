"""The papers' findings, re-measured over seeds, in one command.

    python -m examples.reproduce                 # MNIST-1D, 5 seeds each
    python -m examples.reproduce --quick         # a few minutes
    python -m examples.reproduce --preset paper --data_dir ~/data  # CIFAR-10
    tensorboard --logdir runs/reproduce

Runs Gotmare et al.'s three experiments, `sgdr_mode_connectivity`
(finding a: restarts and mode connectivity), `warmup_cca` (finding b:
warmup and the deep layers' stability) and `distillation_cca` (finding c:
where distilled knowledge lands), then the follow-ups'
`warmup_phase_diagram` (finding d: Kalra & Barkeshli, why warmup works)
and `intrinsic_lr` (finding e: Li, Lyu & Arora's intrinsic learning
rate), each in its own folder under `--logdir`. Every (experiment, configuration, seed)
cell writes its result atomically when it finishes and a rerun skips the
finished ones, so an interrupted run resumes where it stopped; the cells
run as separate processes over the CPU cores. `findings.json` and
`findings.md` collect each claim, what was measured (means with 95%
intervals over seeds) and a verdict.
"""

import os
import time

import keras

from examples import common
from examples import distillation_cca
from examples import intrinsic_lr
from examples import sgdr_mode_connectivity
from examples import stats
from examples import warmup_cca
from examples import warmup_phase_diagram

EXPERIMENTS = {
    "sgdr": sgdr_mode_connectivity,
    "warmup": warmup_cca,
    "distillation": distillation_cca,
    "phase": warmup_phase_diagram,
    "intrinsic_lr": intrinsic_lr,
}


def _verdict(checks):
    if all(checks):
        return "reproduced"
    return "partly" if any(checks) else "not reproduced"


def findings(results):
    """One row per claim: the claim, the measurement, a verdict."""
    rows = []
    if "sgdr" in results:
        out = results["sgdr"]
        for name, entry in out["summary"].items():
            if "verdict" not in entry:
                rows.append(
                    {
                        "finding": "a",
                        "claim": "SGDR does not escape to other minima",
                        "experiment": name,
                        "measured": f"{entry['seeds_trained']} of "
                        f"{entry['seeds']} seeds trained",
                        "verdict": "not measured",
                    }
                )
                continue
            v = entry["verdict"]
            line = entry["sgdr_line_train_above_chord"][-1]
            sgd = entry["sgd_line_train_above_chord"][-1]
            drop = entry["line_minus_curve_train_above_chord"]
            share = entry["curve_lower_train_worse_test_share"]
            rows.append(
                {
                    "finding": "a",
                    "claim": "the straight line between SGDR snapshots "
                    "crosses a loss barrier, yet a learned curve joins "
                    "them without one (the restarts do not escape to "
                    "isolated minima)",
                    "experiment": f"{name}, last snapshot pair",
                    "measured": "training loss above the chord: SGDR line "
                    f"{stats.format_ci(line)}, SGD line "
                    f"{stats.format_ci(sgd)}; line minus curve "
                    f"{stats.format_ci(drop)} "
                    f"({entry['seeds_trained']}/{entry['seeds']} seeds "
                    "trained)",
                    "verdict": _verdict(
                        [v["line_barrier"], v["curve_removes_it"]]
                    ),
                }
            )
            rows.append(
                {
                    "finding": "a",
                    "claim": "points on the curve have a lower training "
                    "loss than the snapshots but generalise worse",
                    "experiment": name,
                    "measured": "share of inner curve points with lower "
                    "training loss and lower test accuracy than both "
                    f"snapshots: {stats.format_ci(share)}",
                    "verdict": _verdict([v["lower_train_worse_test"]]),
                }
            )
    if "warmup" in results:
        out = results["warmup"]["summary"]
        v = out["verdict"]
        warm = out["comparisons"]["large_batch_minus_large_batch_warmup"]
        frozen = out["comparisons"]["large_batch_minus_large_batch_frozen"]
        arms = out["arms"]
        rows.append(
            {
                "finding": "b",
                "claim": "warmup keeps the deeper layers from "
                "destabilising large-batch training",
                "experiment": f"large-batch rate {out['large_rate']:g} "
                "(sweep), instability = 1 - SVCCA(previous epoch) over "
                f"the first {out['warmup_epochs']} epochs",
                "measured": "no warmup minus warmup, deep layers "
                f"{stats.format_ci(warm['deep'])}, other layers "
                f"{stats.format_ci(warm['shallow'])}; test accuracy "
                + ", ".join(
                    f"{a} {stats.format_ci(arms[a]['test_accuracy'])}"
                    for a in warmup_cca.ARMS
                ),
                "verdict": _verdict(
                    [
                        v["warmup_stabilises_deep_layers"],
                        v["mostly_deep_layers"],
                    ]
                ),
            }
        )
        rows.append(
            {
                "finding": "b",
                "claim": "freezing the deep layers during the warmup "
                "steps (no warmup) does about the same",
                "experiment": "large batch, Dense layers frozen",
                "measured": "no warmup minus frozen, deep layers "
                f"{stats.format_ci(frozen['deep'])}",
                "verdict": _verdict([v["freezing_does_the_same"]]),
            }
        )
    if "distillation" in results:
        for config, out in results["distillation"]["summary"].items():
            v = out["verdict"]
            rows.append(
                {
                    "finding": "c",
                    "claim": "distilled knowledge lands mainly in the "
                    "deeper layers",
                    "experiment": f"{config}: diagonal SVCCA gain, "
                    "distilled minus independent student, vs the teacher",
                    "measured": "deep half "
                    f"{stats.format_ci(out['deep_half_gain'])}, shallow "
                    f"half {stats.format_ci(out['shallow_half_gain'])}, "
                    "difference "
                    f"{stats.format_ci(out['deep_minus_shallow_gain'])}; "
                    "test accuracy gain "
                    f"{stats.format_ci(out['accuracy_gain'])}",
                    "verdict": _verdict(
                        [v["deeper_layers_gain_more"], v["deep_layers_gain"]]
                    ),
                }
            )
    if "phase" in results:
        rows.extend(_phase_rows(results["phase"]["summary"]))
    if "intrinsic_lr" in results:
        rows.extend(_intrinsic_rows(results["intrinsic_lr"]["summary"]))
    return rows


def _frontier(column):
    """The largest trained rate as `2**mean [2**low, 2**high]`."""
    f = column["frontier_log2"]
    if f is None:
        return "none trained"
    text = f"{2 ** f['mean']:.3g}"
    if f["n"] > 1:
        text += f" [{2 ** f['low']:.3g}, {2 ** f['high']:.3g}]"
    return text


def _log2_difference(ci):
    if ci is None:
        return "not measured"
    return f"{stats.format_ci(ci)} (log2 units)"


def _phase_rows(out):
    columns, comparisons = out["columns"], out["comparisons"]
    v = out["verdict"]
    rows = []
    for optimizer, unit, limit in (
        ("sgd", "lambda_0", warmup_phase_diagram.SGD_LIMIT),
        ("adam", "lambda_0^P", warmup_phase_diagram.ADAM_LIMIT),
    ):
        names = sorted(
            (c for c in columns.values() if c["optimizer"] == optimizer),
            key=lambda c: (c["warmup"] == "catapult", c["warmup"]),
        )
        frontier = "; ".join(
            f"warmup {c['warmup']}: {_frontier(c)}"
            for c in names
            if c["warmup"] != "catapult"
        )
        key = f"{optimizer}_longest_minus_no_warmup"
        rows.append(
            {
                "finding": "d",
                "claim": "longer warmup lets the network train at a larger "
                "target rate",
                "experiment": f"{optimizer}: largest trained eta_trgt x "
                f"{unit} (limit {limit:g}) per warmup length",
                "measured": f"{frontier}; longest minus no warmup "
                f"{_log2_difference(comparisons[key])}",
                "verdict": _verdict([v[key]]),
            }
        )
    rows.append(
        {
            "finding": "d",
            "claim": "GI-Adam moves Adam's frontier as warmup does",
            "experiment": "no warmup: GI-Adam minus Adam, largest trained rate",
            "measured": _log2_difference(
                comparisons["gi_adam_minus_adam_no_warmup"]
            )
            + "; Adam longest warmup minus none "
            + _log2_difference(comparisons["adam_longest_minus_no_warmup"]),
            "verdict": _verdict([v["gi_adam_minus_adam_no_warmup"]]),
        }
    )
    regimes = out["regimes"]
    if "standard" in regimes and "mup" in regimes:
        rows.append(
            {
                "finding": "d",
                "claim": "the parameterisation sets the regime: one starts "
                "in sharpness reduction, the other in progressive "
                "sharpening",
                "experiment": "mean log(lambda(t) / lambda_0) over the "
                f"first {regimes['standard']['early_step']} steps of a "
                "warmup to 2 / lambda_0",
                "measured": "standard "
                f"{stats.format_ci(regimes['standard']['log_early_ratio'])}"
                ", muP-like "
                f"{stats.format_ci(regimes['mup']['log_early_ratio'])}",
                "verdict": _verdict([v["two_regimes"]]),
            }
        )
    catapult = next(
        (c for c in columns.values() if c["warmup"] == "catapult"), None
    )
    if catapult is not None:
        difference = comparisons["catapult_minus_warmup_accuracy"]
        rows.append(
            {
                "finding": "d",
                "claim": "starting the warmup at the loss-catapult rate "
                "saves steps and does no worse (test accuracy not more "
                "than 2 points lower)",
                "experiment": "SGD, catapult start vs the full warmup it "
                "replaces, over the trained grid rates",
                "measured": "eta_c x lambda_0 "
                f"{stats.format_ci(catapult['critical_multiple'])}; test "
                "accuracy difference "
                + (
                    "not measured"
                    if difference is None
                    else stats.format_ci(difference)
                ),
                "verdict": _verdict([v["catapult_matches_warmup"]]),
            }
        )
    return rows


def _intrinsic_rows(out):
    v = out["verdict"]
    rows = [
        {
            "finding": "e",
            "claim": "the angular update reaches the equilibrium "
            "sqrt(2 eta lambda (1 - beta) / (1 + beta))",
            "experiment": "BN network, SGD + momentum + decoupled decay, "
            f"{len(out['configs'])} (eta, lambda) settings",
            "measured": "measured / predicted "
            f"{stats.format_ci(out['measured_over_predicted'])}",
            "verdict": _verdict([v["equilibrium_angle"]]),
        },
        {
            "finding": "e",
            "claim": "equilibrium is reached in O(1 / (eta lambda)) steps, "
            "not exponentially many (fast equilibrium conjecture)",
            "experiment": "log-log slope of the steps to 90% of the way to "
            "equilibrium against 1 / (eta lambda)",
            "measured": f"slope {stats.format_ci(out['slope'])}",
            "verdict": _verdict(
                [
                    v["fast_equilibrium_at_most_linear"],
                    v["fast_equilibrium_linear"],
                ]
            ),
        },
    ]
    pairs = out["equal_products"]
    if pairs:
        rows.append(
            {
                "finding": "e",
                "claim": "equal eta x lambda gives equal equilibrium "
                "test accuracy",
                "experiment": "paired difference, larger minus smaller rate",
                "measured": "; ".join(
                    f"eta lambda {k}: "
                    f"{stats.format_ci(p['accuracy_difference'])}"
                    for k, p in pairs.items()
                ),
                "verdict": _verdict([v["equal_products_equal_accuracy"]]),
            }
        )
    return rows


def markdown(rows, context):
    lines = [
        f"Measured on {context}.",
        "",
        "| finding | claim | experiment | measured (mean [95% CI]) | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['finding']} | {r['claim']} | {r['experiment']} | "
            f"{r['measured']} | {r['verdict']} |"
        )
    return "\n".join(lines) + "\n"


def run(logdir, only=None, **options):
    """Runs the experiments (all, or `only`) and writes the findings."""
    only = list(only or EXPERIMENTS)
    for name in only:
        common.check_choice("only", name, list(EXPERIMENTS))
    results, seconds = {}, {}
    for name in only:
        print(f"\n=== {name}: {EXPERIMENTS[name].__doc__.splitlines()[0]}")
        started = time.time()
        results[name] = EXPERIMENTS[name].run(
            os.path.join(logdir, name), **options
        )
        seconds[name] = time.time() - started
        print(f"=== {name} done in {seconds[name]:.0f} s")
    rows = findings(results)
    first = next(iter(results.values()))
    context = (
        f"{first['data']}, {keras.backend.backend()} backend, preset "
        f"{first['preset']}{' (quick)' if first['quick'] else ''}, "
        f"wall time " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    )
    common.write_json(
        os.path.join(logdir, "findings.json"),
        {"context": context, "rows": rows, "seconds": seconds},
    )
    text = markdown(rows, context)
    common.write_text(os.path.join(logdir, "findings.md"), text)
    print("\n" + text)
    return rows


def main():
    from absl import app
    from absl import flags

    flags.DEFINE_list("only", [], f"Run only these of {list(EXPERIMENTS)}.")

    def _run(logdir, **options):
        return run(logdir, only=flags.FLAGS.only, **options)

    del app
    common.main(_run, "runs/reproduce")


if __name__ == "__main__":
    main()
