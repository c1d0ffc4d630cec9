"""The report's figures, as PNG bytes (matplotlib's Agg canvas; pyplot and its global state are
never touched). Each `fig_*` returns `Figure(png, None)` or, when there is nothing to draw,
`Figure(None, why)` so the report can say so in the figure's place.

(f) needs torch and transformers: they are imported only when a collapsed and a healthy
checkpoint both exist.

Over 400 lines on purpose: one function per figure (a-f), sharing the axes' conventions.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sweetspot import storage
from sweetspot.analysis.collapse import CollapseReport
from sweetspot.analysis.results import Results, TrialResult, finite
from sweetspot.analysis.sweetspot import SweetSpots
from sweetspot.trainable import keys

ATTENTION_LAYERS = (0, 1, 2, -1)  # the study's heat maps: the first three layers and the last
MAX_TOKENS = 32  # tokens shown on a heat map's axes


@dataclass(frozen=True)
class Figure:
    png: bytes | None
    note: str | None = None  # why there is no figure, or what to know about it


def _new(width: float, height: float):
    from matplotlib.figure import Figure as MplFigure

    return MplFigure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _series(trial: TrialResult, key: str) -> tuple[list[float], list[float]]:
    rows = [r for r in trial.history if finite(r.get(key)) and finite(r.get(keys.EPOCH)) and not r.get(keys.DIVERGED)]
    return [float(r[keys.EPOCH]) for r in rows], [float(r[key]) for r in rows]


def _params_text(p: dict[str, Any]) -> str:
    """`lr=2.0e-04 wd=0.01` (lr `default` when neither searched nor set; wd only when non-zero)."""
    lr = f"lr={p['lr']:.1e}" if finite(p["lr"]) else "lr=default"
    return lr + (f" wd={p['weight_decay']:g}" if finite(p["weight_decay"]) and p["weight_decay"] else "")


def _plain_text(text: str) -> str:
    """Text matplotlib draws as is: an unescaped `$` pair would start math mode."""
    return text.replace("$", r"\$")


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.85 * i / max(n - 1, 1)) for i in range(n)]


def _optimizer_colors(names: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {name: cmap(i % 10) for i, name in enumerate(sorted(names))}


def _floor(ax, results: Results, metric: str) -> None:
    if metric == keys.VAL_P1 and results.majority_p1 is not None:
        ax.axhline(results.majority_p1, color="grey", linestyle=":", linewidth=1, label="majority-label floor")


def _best_trial_per_optimizer(results: Results, spots: SweetSpots) -> dict[str, TrialResult]:
    """Per optimizer, the trial with the best score at the comparison epoch."""
    sign = 1.0 if spots.mode == "max" else -1.0
    best: dict[str, tuple[float, TrialResult]] = {}
    for t in results.trials:
        value = spots.comparison.scores[t.trial_id].value
        if t.diverged or not finite(value):
            continue
        name = str(results.params(t)["optimizer"])
        if name not in best or sign * value > sign * best[name][0]:
            best[name] = (value, t)
    return {name: t for name, (_, t) in sorted(best.items())}


def fig_optimizers(results: Results, spots: SweetSpots) -> Figure:
    """(a) The best run of each optimizer: the metric and the loss per epoch (the study's Fig. 1)."""
    best = _best_trial_per_optimizer(results, spots)
    if not best:
        return Figure(None, "no trial has a finite score to compare optimizers by")
    colors = _optimizer_colors(list(best))
    fig = _new(11, 4)
    ax_m, ax_l = fig.subplots(1, 2)
    for name, t in best.items():
        p = results.params(t)
        label = f"{name} {_params_text(p)}"
        ax_m.plot(*_series(t, spots.metric), marker="o", color=colors[name], label=label)
        ax_l.plot(*_series(t, keys.TRAIN_LOSS), marker="o", color=colors[name], label=f"{name} train")
        ax_l.plot(*_series(t, keys.VAL_LOSS), marker="s", linestyle="--", color=colors[name], label=f"{name} validation")
    _floor(ax_m, results, spots.metric)
    ax_m.set(xlabel="epoch", ylabel=spots.metric, title=f"best run per optimizer: {spots.metric}")
    ax_l.set(xlabel="epoch", ylabel="BCE loss", title="loss (solid: train, dashed: validation)")
    ax_m.legend(fontsize=8)
    ax_l.legend(fontsize=7, ncol=2)
    return Figure(_png(fig))


def fig_per_optimizer(results: Results, metric: str) -> Figure:
    """(b) Per optimizer (rows): training loss per epoch for each lr, and the metric per epoch for each lr."""
    by_opt: dict[str, list[TrialResult]] = {}
    for t in results.trials:
        if t.history:
            by_opt.setdefault(str(results.params(t)["optimizer"]), []).append(t)
    if not by_opt:
        return Figure(None, "no trial reported any epoch")
    fig = _new(11, 2.8 * len(by_opt) + 0.4)
    axes = fig.subplots(len(by_opt), 2, squeeze=False)
    for row, (name, trials) in enumerate(sorted(by_opt.items())):
        lrs = sorted({results.params(t)["lr"] for t in trials if finite(results.params(t)["lr"])})
        color = dict(zip(lrs, _colors(len(lrs))))
        decays = {results.params(t)["weight_decay"] for t in trials}
        seen = set()
        for t in sorted(trials, key=lambda t: (results.params(t)["lr"] or 0, results.params(t)["weight_decay"] or 0)):
            p = results.params(t)
            label = f"lr={p['lr']:.1e}" if finite(p["lr"]) else "lr=default"
            if len(decays) > 1:
                label += f" wd={p['weight_decay']:g}"
            style = "--" if len(decays) > 1 and p["weight_decay"] != min(decays) else "-"
            kwargs = dict(
                color=color.get(p["lr"], "black"),
                linestyle=style,
                marker="o",
                markersize=3,
                label=label if label not in seen else None,
            )
            seen.add(label)
            axes[row][0].plot(*_series(t, keys.TRAIN_LOSS), **kwargs)
            axes[row][1].plot(*_series(t, metric), **kwargs)
            if t.diverged:
                axes[row][1].annotate("diverged", xy=(t.last_epoch, 0), fontsize=7, color="red")
        _floor(axes[row][1], results, metric)
        axes[row][0].set(xlabel="epoch", ylabel="train loss", title=f"{name}: training loss per lr")
        axes[row][1].set(xlabel="epoch", ylabel=metric, title=f"{name}: {metric} per lr")
        axes[row][1].legend(fontsize=7, ncol=2)
    return Figure(_png(fig))


def fig_weight_decay(spots: SweetSpots) -> Figure:
    """(c) Weight-decay ablation (the study's Adam vs AdamW): score vs weight decay, per optimizer and lr."""
    groups: dict[tuple[str, float], list] = {}
    for c in spots.configs:
        if finite(c.value):
            groups.setdefault((c.optimizer, c.lr), []).append(c)
    groups = {k: sorted(v, key=lambda c: c.weight_decay) for k, v in groups.items() if len({c.weight_decay for c in v}) > 1}
    if not groups:
        return Figure(None, "no optimizer was run at more than one weight decay for the same lr: nothing to compare")
    decays = sorted({c.weight_decay for v in groups.values() for c in v})
    positive = [d for d in decays if d > 0]
    colors = _optimizer_colors({o for o, _ in groups})
    fig = _new(8, 4.5)
    ax = fig.subplots()
    for (name, lr), configs in sorted(groups.items()):
        marker = "o" if name == "adam" else "s" if name == "adamw" else "^"
        ax.plot(
            [c.weight_decay for c in configs],
            [c.value for c in configs],
            marker=marker,
            color=colors[name],
            label=f"{name} lr={lr:.1e}",
        )
    if positive:
        ax.set_xscale("symlog", linthresh=min(positive))
    if spots.threshold is not None:
        ax.axhline(spots.threshold, color="black", linestyle="--", linewidth=1, label=f"sweet-spot threshold (δ={spots.delta:g})")
    ax.set(
        xlabel="weight decay (symlog; 0 at the left)",
        ylabel=f"config score ({spots.metric}, epoch ends <= {spots.comparison.epoch:g})",
        title="weight-decay ablation (Adam: L2 in the gradient; AdamW: decoupled)",
    )
    ax.legend(fontsize=8)
    return Figure(_png(fig))


def fig_sweet_spots(results: Results, spots: SweetSpots, baselines: dict[str, float] | None, floor: float | None) -> Figure:
    """(d) Score at the comparison epoch vs lr (log x) per optimizer, sweet-spot intervals shaded
    (fainter out to each edge's resolution), failed configurations (×) and censored trials (○)
    along the bottom, reference lines drawn."""
    optimizers = [s for s in spots.optimizers if s.lrs or s.censored]
    if not optimizers:
        return Figure(None, "no configuration with a learning rate and a score")
    colors = _optimizer_colors([s.optimizer for s in optimizers])
    by_id = {t.trial_id: t for t in results.trials}
    fig = _new(9, 5)
    ax = fig.subplots()
    finite_values = [c.value for c in spots.configs if finite(c.value)]
    bottom = min(finite_values) if finite_values else 0.0
    for n, s in enumerate(optimizers):  # markers and sizes differ, so optimizers with equal scores stay visible
        color = colors[s.optimizer]
        points = sorted((c.lr, c.value) for c in spots.configs if c.optimizer == s.optimizer and finite(c.value))
        profile = {}
        for lr, v in points:
            if lr not in profile or (v > profile[lr] if spots.mode == "max" else v < profile[lr]):
                profile[lr] = v
        xs = sorted(profile)
        ax.plot(
            xs,
            [profile[x] for x in xs],
            marker="osD^v<>p"[n % 8],
            markersize=9 - 1.5 * (n % 4),
            color=color,
            alpha=0.85,
            label=s.optimizer + ("" if s.found else f": {spots.verdict_text(s)}"),
        )
        if len(points) > len(xs):  # other weight decays / seeds' configurations as faint dots
            ax.scatter([p[0] for p in points], [p[1] for p in points], s=10, color=color, alpha=0.35)
        failed = [c.lr for c in spots.configs if c.optimizer == s.optimizer and c.failed]
        if failed:
            ax.scatter(
                failed, [bottom] * len(failed), marker="x", s=60, color=color, label=f"{s.optimizer} diverged or collapsed"
            )
        censored = [results.params(by_id[t])["lr"] for t in s.censored]  # finite: sweet spots list only trials with an lr
        if censored:
            ax.scatter(
                censored,
                [bottom] * len(censored),
                marker="o",
                s=40,
                facecolors="none",
                edgecolors=color,
                label=f"{s.optimizer} stopped before epoch {spots.comparison.epoch:g} ({len(censored)}, not scored)",
            )
        labelled = set()

        def band(lo: float, hi: float, alpha: float, what: str, color=color, s=s, labelled=labelled) -> None:
            ax.axvspan(lo, hi, color=color, alpha=alpha, label=None if what in labelled else f"{s.optimizer}: {what}")
            labelled.add(what)

        for i in s.intervals:
            lo, hi = (i.lower_lr, i.upper_lr) if i.width_decades > 0 else (i.lower_lr / 1.05, i.upper_lr * 1.05)
            band(lo, hi, 0.15, "trains")
            for bracket in (i.lower_bracket, i.upper_bracket):
                if bracket is not None:
                    band(bracket[0], bracket[1], 0.05, "an edge lies in this bracket")
        for i in s.well:
            lo, hi = (i.lower_lr, i.upper_lr) if i.width_decades > 0 else (i.lower_lr / 1.05, i.upper_lr * 1.05)
            band(lo, hi, 0.3, f"trains well ({spots.well_share:.0%} of its best gain)")
    ax.set_xscale("log")
    if spots.threshold is not None:
        ax.axhline(
            spots.threshold,
            color="black",
            linestyle="--",
            linewidth=1,
            label=(
                f"trains: the floor + margin, +{spots.delta:.0%} ({spots.threshold:.4f})"
                if spots.rule == "trains"
                else f"within {spots.delta:.0%} of the best ({spots.threshold:.4f})"
            ),
        )
    if floor is not None:
        ax.axhline(floor, color="grey", linestyle=":", linewidth=1.2, label=f"majority-label predictor ({floor:.4f})")
    for name, value in (baselines or {}).items():
        if finite(value):
            ax.axhline(value, color="tab:red", linestyle="-.", linewidth=1.2, label=f"{name} ({value:.4f})")
    at = spots.comparison.epoch
    ax.set(
        xlabel="learning rate (log)",
        ylabel=f"config score ({spots.metric}, mean − std of runs; epoch ends <= {at:g})",
        title=f"sweet spots at epoch {at:g}"
        + (" (the budget)" if spots.comparison.source == "budget" else "")
        + (
            ": shaded where a configuration trains"
            if spots.rule == "trains"
            else ": shaded where a configuration is within δ of the best"
        ),
    )
    ax.legend(fontsize=7, ncol=2)
    return Figure(_png(fig))


LABELLED_COLLAPSES = 6  # up to this many collapsed trials are named in figure (e)'s legend; more are counted


def _runs(n: int) -> str:
    return f"{n} run{'' if n == 1 else 's'}"


def fig_collapse(results: Results, collapse: CollapseReport) -> Figure:
    """(e) Prediction entropy per epoch for every trial; collapsed evaluations marked. Up to
    `LABELLED_COLLAPSES` collapsed trials are named in the legend (id, optimizer, lr); with more, each
    kind of line is one legend entry with its count, so that the figure stays readable at 90+ trials."""
    import textwrap

    trials = [c for c in collapse.trials if c.entropy]
    if not trials:
        return Figure(None, f"no trial reported {keys.VAL_PRED_ENTROPY}")
    fig = _new(9, 4.5)
    ax = fig.subplots()
    by_id = {t.trial_id: t for t in results.trials}
    counts = {
        "collapsed": sum(1 for c in trials if c.collapsed and not c.recovered),
        "recovered": sum(1 for c in trials if c.collapsed and c.recovered),
        "healthy": sum(1 for c in trials if not c.collapsed),
    }
    named = counts["collapsed"] + counts["recovered"] <= LABELLED_COLLAPSES
    kinds = {
        "collapsed": ("tab:red", 0.8, 1.5, f"collapsed ({_runs(counts['collapsed'])})"),
        "recovered": ("tab:orange", 0.8, 1.5, f"collapsed, then recovered ({_runs(counts['recovered'])})"),
        "healthy": ("tab:blue", 0.5, 1.0, f"not collapsed ({_runs(counts['healthy'])})"),
    }
    labelled: set[str] = set()
    for c in trials:
        xs, ys = [e for e, _ in c.entropy], [h for _, h in c.entropy]
        kind = "healthy" if not c.collapsed else "recovered" if c.recovered else "collapsed"
        color, alpha, width, text = kinds[kind]
        if kind != "healthy" and named:
            p = results.params(by_id[c.trial_id])
            label = (f"{c.trial_id} {p['optimizer']} lr={p['lr']:.1e}" if finite(p["lr"]) else c.trial_id) + (
                " (recovered)" if c.recovered else ""
            )
        else:
            label = None if kind in labelled else text
            labelled.add(kind)
        ax.plot(xs, ys, color=color, alpha=alpha, linewidth=width, label=label)
        if c.collapsed:
            marked = [(e, h) for e, h in c.entropy if e in c.collapsed_epochs]
            ax.scatter([e for e, _ in marked], [h for _, h in marked], marker="x", s=50, color=color, zorder=3)
    thresholds = [c.threshold for c in trials if c.threshold is not None]
    if thresholds:
        ax.axhline(
            max(thresholds),
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"collapse threshold: {results.train_config.collapse_entropy_fraction:g} × true-label entropy",
        )
    ax.set(xlabel="epoch", ylabel=f"{keys.VAL_PRED_ENTROPY}\n(0 = one label for every document)")
    ax.set_title(
        textwrap.fill(f"collapse: {collapse.count().text()}", 110)
        + "\n(× = collapsed evaluation: constant predictions, representation collapsed)",
        fontsize=9,
    )
    ax.set_ylim(bottom=-0.02)
    ax.legend(fontsize=7, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return Figure(_png(fig))


# ------------------------------------------------------------------------------------------------
# (f) attention heat maps


def _pick_checkpoints(
    results: Results, spots: SweetSpots, collapse: CollapseReport
) -> tuple[TrialResult | None, TrialResult | None]:
    """A trial whose latest checkpoint is collapsed, and the best-scored one whose is not (the
    latest checkpoint holds the last evaluation's weights)."""
    by_id = {t.trial_id: t for t in results.trials}
    sign = 1.0 if spots.mode == "max" else -1.0

    def score(trial_id: str) -> float:
        v = spots.comparison.scores[trial_id].value
        return sign * v if finite(v) else -math.inf

    def lr(trial_id: str) -> float:
        value = results.params(by_id[trial_id])["lr"]
        return float(value) if finite(value) else 0.0

    collapsed = [c for c in collapse.trials if c.final_collapsed and by_id[c.trial_id].checkpoint]
    healthy = [c for c in collapse.trials if not c.final_collapsed and by_id[c.trial_id].checkpoint]
    # The clearest collapse: collapsed at the most evaluations, then the worst score, then the largest lr.
    pick_c = min(
        collapsed, key=lambda c: (-len(c.collapsed_epochs), score(c.trial_id), -lr(c.trial_id), c.trial_id), default=None
    )
    pick_h = max(healthy, key=lambda c: (score(c.trial_id), c.trial_id), default=None)
    return (by_id[pick_c.trial_id] if pick_c else None), (by_id[pick_h.trial_id] if pick_h else None)


def _document(prepared: str) -> list[int]:
    """The first validation document of at most MAX_TOKENS tokens (else the first, cut)."""
    from pathlib import Path

    import pyarrow.parquet as pq

    files = sorted(Path(prepared, "validation").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{prepared}: no validation split")
    docs = pq.read_table(files[0], columns=["input_ids"]).column("input_ids").to_pylist()
    short = [d for d in docs if 8 <= len(d) <= MAX_TOKENS]
    return (short or docs)[0][:MAX_TOKENS]


def attention_maps(results: Results, trial: TrialResult, input_ids: list[int], num_labels: int) -> list[Any]:
    """Head-averaged attention [T, T] of every layer of `trial`'s latest checkpoint on one document."""
    import safetensors.torch
    import torch
    from transformers.utils import logging as hf_logging

    from sweetspot.trainable.model import build_model

    data = storage.read_bytes(storage.join(trial.checkpoint, "model.safetensors"))
    if data is None:
        raise FileNotFoundError(f"{trial.checkpoint}: no model.safetensors")
    hf_logging.disable_progress_bar()  # a "Loading weights" bar per model is noise in `sweetspot analyze`
    model = build_model(results.model_config, num_labels)
    model.load_state_dict(safetensors.torch.load(data))
    model.encoder.set_attn_implementation("eager")  # sdpa returns no attention weights
    model.eval()
    ids = torch.tensor([input_ids])
    with torch.no_grad():
        out = model.encoder(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True)
    return [a[0].mean(0).numpy() for a in out.attentions]  # per layer: [heads, T, T] -> [T, T]


def _token_names(prepared_manifest: dict[str, Any], input_ids: list[int]) -> list[str]:
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(prepared_manifest["tokenizer"]["name"]).convert_ids_to_tokens(input_ids)
    except Exception:  # no tokenizer here: the ids label the axes
        return [str(i) for i in input_ids]


def fig_attention(results: Results, spots: SweetSpots, collapse: CollapseReport) -> Figure:
    """(f) Attention heat maps (layers 0, 1, 2 and the last) of a collapsed and of a healthy
    checkpoint on the same validation document."""
    import json

    collapsed, healthy = _pick_checkpoints(results, spots, collapse)
    if collapsed is None or healthy is None:
        missing = "collapsed" if collapsed is None else "healthy (not collapsed)"
        return Figure(None, f"no {missing} trial with a checkpoint to compare")
    prepared = results.prepared_path
    manifest_text = storage.read_text(storage.join(prepared, "manifest.json")) if prepared else None
    if manifest_text is None:
        return Figure(None, "the prepared data (sweetspot.yaml's prepared_path) is not available: no document to show")
    manifest = json.loads(manifest_text)
    try:
        input_ids = _document(prepared)
        maps = {
            t.trial_id: attention_maps(results, t, input_ids, int(manifest["stats"]["num_labels"])) for t in (collapsed, healthy)
        }
    except Exception as e:  # a model that cannot be built here, a damaged checkpoint: say so, go on
        return Figure(None, f"attention maps unavailable: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    tokens = [_plain_text(t) for t in _token_names(manifest, input_ids)]
    n_layers = len(next(iter(maps.values())))
    layers = sorted({i % n_layers for i in ATTENTION_LAYERS})
    fig = _new(3.3 * len(layers) + 0.6, 7.2)
    axes = fig.subplots(2, len(layers), squeeze=False)
    for row, (kind, t) in enumerate((("collapsed", collapsed), ("healthy", healthy))):
        p = results.params(t)
        vmax = max(float(maps[t.trial_id][layer].max()) for layer in layers)  # one colour scale per row
        name = f"{kind}: {p['optimizer']} {_params_text(p)}"
        for col, layer in enumerate(layers):
            ax = axes[row][col]
            im = ax.imshow(maps[t.trial_id][layer], cmap="viridis", vmin=0.0, vmax=vmax)
            ax.set_title(f"{name}\nlayer {layer}" + (" (last)" if layer == n_layers - 1 else ""), fontsize=8)
            ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=5)
            ax.set_yticks(range(len(tokens)), tokens, fontsize=5)
        fig.colorbar(im, ax=axes[row].tolist(), shrink=0.8)
    note = (
        f"document: the first validation document of 8–{MAX_TOKENS} tokens; attention averaged over heads; "
        f"rows attend to columns. Collapsed: trial {collapsed.trial_id}; healthy: trial {healthy.trial_id}."
    )
    return Figure(_png(fig), note)
