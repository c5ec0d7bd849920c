"""Mechanistic analysis of a run (RESEARCH.md section 3): progress measures, ablation, grafting.

Everything is read from the model's named activations (`model.forward(..., cache=True)`) or done
by patching them (`hooks=`); there is no second forward pass here. Positions: `x1 y1 x2 y2 xq` =
0..4; layers are numbered 1 and 2 as in the paper (activation names count from 0).

Progress measures, per checkpoint and head:
- Layer 1, on the training-distribution evaluation set: attention from each label token (positions
  1, 3) to its exemplar (the previous token) and to itself, averaged over both label tokens and
  the sequences; and from the second label token alone, to its exemplar and to the first token x1
  (the first label's only earlier token is its exemplar, so only the second shows where else
  attention can go).
- Layer 2, on the flip evaluator: induction strength = attention from the query to the label token
  paired in context with the query's class, minus attention to the other label token, averaged over
  sequences; reported per head and summed over heads.

Ablation: Layer 1's output replaced, for the whole layer or one head at a time, by zero or by its
mean over the training-distribution set (per position and head); every evaluator is re-scored.
Two paths: `total` replaces it everywhere (Layer 2 sees the replacement too); `direct` replaces it
only in the residual stream the unembedding reads, so Layer 2 still sees the real output (this
separates Layer 1's direct effect on the logits from its effect through Layer 2's keys and values).

Grafting: the parameters of one layer (its layer norm and attention weights), or of one half of the
paper's cut (`first_half`: embeddings and block 0; `second_half`: block 1, final norm, unembedding),
of checkpoint i put into the model of checkpoint j, then every evaluator scored: an i x j matrix per
evaluator.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from runio import write_csv
from runio.options import ConfigError, out_dir
from transformer import plots
from transformer.data import EVALUATORS, Batch
from transformer.choices import FULL_ACCURACY
from transformer.evaluate import context_cross_entropy, evaluate_all, judge
from transformer.model import ModelConfig, forward
from transformer.checkpoints import load_checkpoint
from transformer.config import in_layer, make_eval_sets, make_source, parse_layer
from transformer.readout import PAPER_CIWL, readout_table
from transformer.rundir import RunDir

LABEL_POSITIONS = (1, 3)
QUERY_POSITION = 4
ABLATION_MODES = ("zero", "mean")
ABLATION_PATHS = ("total", "direct")


# ---- a run on disk ---------------------------------------------------------------------------------


class Run:
    """A run directory: its config, evaluation sets (rebuilt from the seed), metrics and checkpoints."""

    def __init__(self, path: str | Path):
        run = RunDir.open(path, needs=("config", "checkpoints"))
        self.path = run.path
        self.config = run.config()
        self.model = self.config.model_config()
        self.steps = run.steps()
        if not self.steps:
            raise ValueError(f"{self.path} has no checkpoints yet")
        self.metrics = {r["step"]: r for r in run.metrics()} if run.metrics_file.is_file() else {}
        self._sets = None

    @property
    def sets(self) -> dict[str, Batch]:
        if self._sets is None:
            cfg = self.config
            self._sets = make_eval_sets(cfg, make_source(cfg))
        return self._sets

    def params(self, step: int) -> dict[str, jax.Array]:
        if step not in self.steps:
            raise ValueError(f"{self.path} has no checkpoint at step {step}")
        return load_checkpoint(self.path, self.config, step)[0]

    def sequences(self, step: int) -> int:
        return step * self.config.batch

    def spread(self, count: int) -> list[int]:
        """At most `count` checkpoint steps, evenly spread from the first to the last."""
        if count >= len(self.steps):
            return list(self.steps)
        idx = np.unique(np.round(np.linspace(0, len(self.steps) - 1, count)).astype(int))
        return [self.steps[i] for i in idx]

    def icl_peak_step(self) -> int:
        """The checkpoint with the highest ICL accuracy in metrics.csv (the last one if no metrics)."""
        rows = [r for s, r in self.metrics.items() if s in self.steps]
        return max(rows, key=lambda r: r["icl_acc"])["step"] if rows else self.steps[-1]


def evaluate_run(run, step: int | None = None) -> tuple[int, dict[str, float]]:
    """Re-evaluate a run directory's checkpoint at `step` (None: the latest) on its evaluation sets.

    Returns (step, {'{evaluator}_{acc,loss}': value}); the sets are rebuilt from the run's seed, so
    the numbers equal the run's metrics.csv row for that step.
    """
    run = Path(run)
    cfg = RunDir(run).config()
    params, saved_step = load_checkpoint(run, cfg, step)
    sets = make_eval_sets(cfg, make_source(cfg))
    mcfg = cfg.model_config()
    out = jax.jit(lambda p, s: evaluate_all(p, mcfg, s))(params, sets)
    return saved_step, {k: float(v) for k, v in out.items()}


def context_losses(run: str | Path, progress=None) -> list[dict]:
    """Rows {step, sequences, '{evaluator}_ctx_loss'} for every checkpoint of a run, re-scored on its
    evaluation sets: the in-context losses of a run written before metrics.csv held them (a newer run
    has them in metrics.csv, equal to these). `progress(done, total)` after each checkpoint."""
    r = Run(run)
    score = jax.jit(lambda p, s: evaluate_all(p, r.model, s))
    rows = []
    for i, step in enumerate(r.steps):
        ev = score(r.params(step), r.sets)
        rows.append({"step": step, "sequences": step * r.config.batch,
                     **{k: float(v) for k, v in ev.items() if k.endswith("_ctx_loss")}})
        if progress:
            progress(i + 1, len(r.steps))
    return rows


# ---- progress measures -----------------------------------------------------------------------------


def layer1_attention(acts: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """(previous-token, self) attention of each Layer-1 head from the label tokens: two (H,) arrays."""
    pattern = acts["blocks.0.attn.hook_pattern"]  # (B, H, T_query, T_key)
    prev = jnp.mean(jnp.stack([pattern[:, :, t, t - 1] for t in LABEL_POSITIONS]), axis=(0, 1))
    self_ = jnp.mean(jnp.stack([pattern[:, :, t, t] for t in LABEL_POSITIONS]), axis=(0, 1))
    return prev, self_


def second_label_attention(acts: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """(to its exemplar, to the first token x1) of each Layer-1 head from the second label token
    (position 3): two (H,) arrays. The first label's only earlier token is its exemplar, so the
    second label is where "attend to my exemplar" and "attend elsewhere" can be told apart."""
    pattern = acts["blocks.0.attn.hook_pattern"][:, :, LABEL_POSITIONS[1]]  # (B, H, T_key)
    return pattern[:, :, LABEL_POSITIONS[1] - 1].mean(axis=0), pattern[:, :, 0].mean(axis=0)


def induction_strength(acts: dict[str, jax.Array], batch: Batch) -> jax.Array:
    """(H,) Layer-2 attention from the query to the label paired with its class minus to the other label."""
    pattern = acts["blocks.1.attn.hook_pattern"][:, :, QUERY_POSITION, :]  # (B, H, T_key)
    first = batch.classes[:, 0] == batch.classes[:, 2]  # is the query's class in the first pair?
    sign = jnp.where(first, 1.0, -1.0)[:, None]  # + for position 1, - for position 3
    return jnp.mean(sign * (pattern[:, :, LABEL_POSITIONS[0]] - pattern[:, :, LABEL_POSITIONS[1]]), axis=0)


@partial(jax.jit, static_argnums=1)
def progress_measures(params, cfg: ModelConfig, train_set: Batch, flip_set: Batch, hooks=None) -> dict[str, jax.Array]:
    """{'l1_prev', 'l1_self', 'l1_y2_prev', 'l1_y2_first', 'l2_induction'}: (H,) each, from the
    activations on the two sets."""
    _, acts = forward(params, cfg, train_set.x, train_set.y, cache=True, hooks=hooks)
    prev, self_ = layer1_attention(acts)
    y2_prev, y2_first = second_label_attention(acts)
    _, acts = forward(params, cfg, flip_set.x, flip_set.y, cache=True, hooks=hooks)
    return {"l1_prev": prev, "l1_self": self_, "l1_y2_prev": y2_prev, "l1_y2_first": y2_first,
            "l2_induction": induction_strength(acts, flip_set)}


def progress_table(run: Run, steps: list[int] | None = None, progress=None) -> dict[str, np.ndarray]:
    """Progress measures at every checkpoint (or `steps`) as columns: step, sequences, per-head and
    summary columns (`l1_prev`, `l1_self`: mean over heads; `l2_induction`: sum over heads), and
    the run's evaluator accuracies at that step. `progress(done, total)` after each checkpoint."""
    steps = run.steps if steps is None else steps
    sets = run.sets
    rows = []
    for i, step in enumerate(steps):
        m = {k: np.asarray(v) for k, v in progress_measures(run.params(step), run.model, sets["train"], sets["flip"]).items()}
        rows.append(m)
        if progress:
            progress(i + 1, len(steps))
    H = run.model.heads
    cols: dict[str, np.ndarray] = {"step": np.array(steps), "sequences": np.array([run.sequences(s) for s in steps])}
    cols["l1_prev"] = np.array([r["l1_prev"].mean() for r in rows])
    cols["l1_self"] = np.array([r["l1_self"].mean() for r in rows])
    cols["l1_other"] = 1.0 - cols["l1_prev"] - cols["l1_self"]  # to the other tokens before the label
    cols["l1_y2_prev"] = np.array([r["l1_y2_prev"].mean() for r in rows])  # second label -> its exemplar
    cols["l1_y2_first"] = np.array([r["l1_y2_first"].mean() for r in rows])  # second label -> x1
    cols["l2_induction"] = np.array([r["l2_induction"].sum() for r in rows])
    for name in ("l1_prev", "l1_self", "l1_y2_prev", "l1_y2_first", "l2_induction"):
        for h in range(H):
            cols[f"{name}_h{h}"] = np.array([r[name][h] for r in rows])
    for name in EVALUATORS[1:]:
        if run.metrics:
            cols[f"{name}_acc"] = np.array([run.metrics[s][f"{name}_acc"] if s in run.metrics else np.nan for s in steps])
    return cols


# ---- ablation --------------------------------------------------------------------------------------


@partial(jax.jit, static_argnums=1)
def layer1_outputs(params, cfg: ModelConfig, sets: dict[str, Batch]) -> dict[str, jax.Array]:
    """{set name: (B, T, H, d_model)} each Layer-1 head's output on each set (from the named activations)."""
    return {name: forward(params, cfg, b.x, b.y, cache=True)[1]["blocks.0.attn.hook_result"] for name, b in sets.items()}


@partial(jax.jit, static_argnums=(1, 5))
def ablated_scores(params, cfg: ModelConfig, sets: dict[str, Batch], keep: jax.Array, replacement: jax.Array,
                   path: str = "total", outputs: dict[str, jax.Array] | None = None):
    """Every evaluator with Layer 1's head outputs replaced where `keep` (H,) is 0 by `replacement`
    (T, H, d_model): zeros for zero-ablation, their mean over the training set for mean-ablation;
    `path` total (everywhere) or direct (only in the final residual stream, see the module
    docstring; it needs the heads' real `outputs` from `layer1_outputs`)."""
    drop = (1.0 - keep)[None, None, :, None]
    if path == "total":
        def patch(result):  # (B, T, H, d_model)
            return result * (1.0 - drop) + drop * replacement[None]

        return evaluate_all(params, cfg, sets, hooks={"blocks.0.attn.hook_result": patch})

    out = {}
    last = f"blocks.{cfg.layers - 1}.hook_resid_post"
    for name, batch in sets.items():  # the final residual minus the dropped heads' real output, plus the replacement
        delta = ((replacement[None] - outputs[name]) * drop).sum(axis=2)  # (B, T, d_model)
        logits = forward(params, cfg, batch.x, batch.y, hooks={last: lambda r, delta=delta: r + delta})
        ok, loss = judge(logits, batch, full=name in FULL_ACCURACY)
        out[f"{name}_acc"], out[f"{name}_loss"] = ok.mean(), loss.mean()
        if name not in FULL_ACCURACY:
            out[f"{name}_ctx_loss"] = context_cross_entropy(logits, batch.y, batch.target).mean()
    return out


def ablation_table(run: Run, steps: list[int]) -> list[dict]:
    """Rows {step, sequences, path, mode, ablated ('none', 'layer' or 'head h'), '{evaluator}_acc'}
    for Layer 1 of each checkpoint in `steps`."""
    H = run.model.heads
    sets = run.sets
    rows = []
    for step in steps:
        params = run.params(step)
        outputs = layer1_outputs(params, run.model, sets)
        mean = outputs["train"].mean(axis=0)
        zero = jnp.zeros_like(mean)
        variants = [("none", "none", "none", jnp.ones(H), zero)]
        for path in ABLATION_PATHS:
            for mode, repl in (("zero", zero), ("mean", mean)):
                variants.append((path, mode, "layer", jnp.zeros(H), repl))
                variants += [(path, mode, f"head {h}", jnp.ones(H).at[h].set(0.0), repl) for h in range(H)]
        for path, mode, what, keep, repl in variants:
            ev = ablated_scores(params, run.model, sets, keep, repl, "total" if path == "none" else path, outputs)
            rows.append({"step": step, "sequences": run.sequences(step), "path": path, "mode": mode, "ablated": what,
                         **{f"{n}_acc": float(ev[f"{n}_acc"]) for n in EVALUATORS}})
    return rows


# ---- grafting --------------------------------------------------------------------------------------


def graft(target: dict[str, jax.Array], source: dict[str, jax.Array], layer: int | str) -> dict[str, jax.Array]:
    """`target` with `layer`'s parameters (a block number or a group, see `train.in_layer`) taken from `source`."""
    return {k: (source[k] if in_layer(k, layer) else v) for k, v in target.items()}


def graft_matrix(run: Run, layer: int | str, steps: list[int], progress=None) -> dict[str, np.ndarray]:
    """{'{evaluator}_acc': (n, n)} with entry [i, j] = the model of checkpoint steps[j] carrying
    layer `layer` from checkpoint steps[i]; the diagonal is the run itself. `progress(done, total)`
    after each pair."""
    params = {s: run.params(s) for s in steps}
    score = jax.jit(lambda p, s: evaluate_all(p, run.model, s))
    sets = run.sets
    n = len(steps)
    out = {f"{name}_acc": np.zeros((n, n)) for name in EVALUATORS}
    for i, si in enumerate(steps):
        for j, sj in enumerate(steps):
            ev = score(graft(params[sj], params[si], layer), sets)
            for name in EVALUATORS:
                out[f"{name}_acc"][i, j] = float(ev[f"{name}_acc"])
            if progress:
                progress(i * n + j + 1, n * n)
    return out


# ---- comparing runs --------------------------------------------------------------------------------


# ---- what the `coop transformer eval | analyze | graft | curves` commands do ---------------------------
# (each validates its inputs, raising runio.options.ConfigError naming the parameter, before writing)


def saved_step(path: str | Path, step: int | None) -> None:
    """ConfigError unless `path` is a run directory holding a checkpoint at `step` (None: the latest)."""
    try:
        run = RunDir.open(path, needs=("config", "checkpoints"))
    except ValueError as err:
        raise ConfigError("RUN", str(err)) from None
    if step is not None:
        available = run.steps()
        if step not in available:
            shown = ", ".join(map(str, available[:5] + (["..."] if len(available) > 6 else []) + available[5:][-1:]))
            raise ConfigError("step", f"one of the saved steps ({shown})")


def open_run(path: str | Path) -> Run:
    """The run directory `path` for analysis, else ConfigError on RUN_DIR."""
    try:
        return Run(path)
    except ValueError as err:
        raise ConfigError("RUN_DIR", str(err)) from None


def pick_steps(run: Run, text: str, parameter: str) -> list[int]:
    """Comma list of checkpoint steps, or the words peak (ICL peak) and last; else ConfigError on `parameter`."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "peak":
            out.append(run.icl_peak_step())
        elif part == "last":
            out.append(run.steps[-1])
        elif part.isdigit() and int(part) in run.steps:
            out.append(int(part))
        else:
            shown = ", ".join(map(str, run.steps[:3])) + f", ..., {run.steps[-1]}"
            raise ConfigError(parameter, f"checkpoint steps of the run ({shown}) or peak / last, got {part!r}")
    if not out:
        raise ConfigError(parameter, "at least one checkpoint step, or peak / last")
    return list(dict.fromkeys(out))


def analyze(run: Run, checkpoints: int, ablate_at: str, out, progress=None) -> tuple[dict, list[dict]]:
    """Progress measures at `checkpoints` evenly spread checkpoints (0: all), Layer-1 ablations and
    Layer 2's reading of Layer 1 (`readout`) at `ablate_at` (`pick_steps`); writes
    OUT/progress.{csv,png}, OUT/ablation.{csv,png}, OUT/readout.{csv,png} and returns (progress columns,
    ablation rows, readout rows). `progress(done, total)` after each checkpoint."""
    if checkpoints < 0:
        raise ConfigError("checkpoints", f"must be >= 0 (0: all {len(run.steps)}), got {checkpoints}")
    steps = run.spread(checkpoints) if checkpoints else run.steps
    ablate = pick_steps(run, ablate_at, "ablate_at")
    folder = out_dir(out)
    cols = progress_table(run, steps, progress=progress)
    write_csv(folder / "progress.csv", cols)
    title = f"{run.path.name}: {run.config.train_dist}, seed {run.config.seed}"
    plots.progress(folder / "progress.png", cols, run.model.heads, title=title)
    rows = ablation_table(run, ablate)
    write_csv(folder / "ablation.csv", {k: [r[k] for r in rows] for k in rows[0]})
    plots.ablation(folder / "ablation.png", rows, EVALUATORS, title=title)
    readout = readout_table(run, ablate)
    write_csv(folder / "readout.csv", {k: [r[k] for r in readout] for k in readout[0]})
    plots.readout(folder / "readout.png", readout, reference=PAPER_CIWL, title=title)
    return cols, rows, readout


def graft_report(run: Run, layer: str, checkpoints: int, out, progress=None) -> dict:
    """Graft part `layer` (as on the command line) between `checkpoints` evenly spread checkpoints;
    writes OUT/graft.csv and OUT/graft.png. Returns the layer, its tag and name, the steps, their
    sequences, the matrices and the index of the checkpoint nearest the ICL peak. `progress(done,
    total)` after each graft."""
    try:
        layer = parse_layer(layer, run.model.layers)
    except ValueError as err:
        raise ConfigError("layer", str(err)) from None
    if checkpoints < 2:
        raise ConfigError("checkpoints", f"must be >= 2 (the run has {len(run.steps)}), got {checkpoints}")
    folder = out_dir(out)
    tag, what = (f"L{layer}", f"Layer {layer}") if isinstance(layer, int) else (layer, layer.replace("_", " "))
    steps = run.spread(checkpoints)
    seq = np.array([run.sequences(s) for s in steps])
    mats = graft_matrix(run, layer, steps, progress=progress)
    n = len(steps)
    cols = {"source_step": np.repeat(steps, n), "source_sequences": np.repeat(seq, n),
            "target_step": np.tile(steps, n), "target_sequences": np.tile(seq, n)}
    cols.update({k: v.ravel() for k, v in mats.items()})
    write_csv(folder / "graft.csv", cols)
    plots.graft_heatmaps(folder / "graft.png", seq, mats, layer,
                         title=f"{run.path.name}: {what} of checkpoint i in the model of checkpoint j")
    peak = steps.index(min(steps, key=lambda s: abs(s - run.icl_peak_step())))
    return {"layer": layer, "tag": tag, "steps": steps, "sequences": seq, "mats": mats, "peak": peak, "folder": folder}


# ---- the tables the commands print ---------------------------------------------------------------


def analyze_lines(cols: dict, rows: list[dict], folder: Path) -> list[str]:
    """What `coop transformer analyze` prints: progress measures at four checkpoints, Layer-1 ablations."""
    n = len(cols["sequences"])
    peak = int(np.argmax(cols["l2_induction"]))
    lines = [f"progress measures at {n} checkpoints -> {folder / 'progress.csv'}, {folder / 'progress.png'}",
             f"{'sequences':>11}{'L1 prev':>9}{'L1 self':>9}{'y2->x2':>8}{'y2->x1':>8}{'L2 induction':>14}{'ICL':>7}{'flip':>7}"]
    for i in sorted({0, peak, n // 2, n - 1}):
        lines.append(f"{cols['sequences'][i]:>11,}{cols['l1_prev'][i]:>9.3f}{cols['l1_self'][i]:>9.3f}"
                     f"{cols['l1_y2_prev'][i]:>8.3f}{cols['l1_y2_first'][i]:>8.3f}{cols['l2_induction'][i]:>14.3f}"
                     f"{cols.get('icl_acc', [np.nan] * n)[i]:>7.3f}{cols.get('flip_acc', [np.nan] * n)[i]:>7.3f}")
    lines.append(f"Layer-1 ablation -> {folder / 'ablation.csv'}, {folder / 'ablation.png'}")
    lines.append(f"{'sequences':>11}  {'ablation':<24}" + "".join(f"{e:>7}" for e in EVALUATORS))
    for r in rows:
        if r["ablated"] in ("none", "layer"):
            what = "none" if r["path"] == "none" else f"{r['path']} {r['mode']} layer"
            lines.append(f"{r['sequences']:>11,}  {what:<24}" + "".join(f"{r[e + '_acc']:>7.3f}" for e in EVALUATORS))
    return lines


def graft_lines(g: dict) -> list[str]:
    """What `coop transformer graft` prints: per model, its own flip and ICL and with the peak's and last part."""
    tag, seq, mats, peak, folder, n = g["tag"], g["sequences"], g["mats"], g["peak"], g["folder"], len(g["steps"])
    w = max(12, len(tag) + 8)
    lines = [f"{n} x {n} grafts of {tag} -> {folder / 'graft.csv'}, {folder / 'graft.png'}",
             f"{'model j (seq)':>14}{'own flip':>10}{'+ peak ' + tag:>{w}}{'+ last ' + tag:>{w}}{'own ICL':>9}"
             f"{'+ peak':>8}{'+ last':>8}"]
    f, c = mats["flip_acc"], mats["icl_acc"]
    for j in range(n):
        lines.append(f"{seq[j]:>14,}{f[j, j]:>10.3f}{f[peak, j]:>{w}.3f}{f[-1, j]:>{w}.3f}{c[j, j]:>9.3f}"
                     f"{c[peak, j]:>8.3f}{c[-1, j]:>8.3f}")
    return lines
