"""Training: Adam(W) on sequences drawn inside a jitted step, scanned over chunks between evaluations.

A run directory holds:
- `config.json`       the TrainConfig (a resumed run must match it exactly);
- `metrics.csv`       one row per evaluation: step, sequences, then `{train,icl,ciwl,flip,iwl}_{acc,loss}`
                      on the held-out evaluation sets (fixed by the seed; `train` is the training
                      distribution), starting with the untrained model at step 0;
- `summary.json`      config, wall time, steps/s, ICL peak and end, `transient` (see TRANSIENT_RULE);
- `curves.png`        every evaluator's accuracy against sequences seen;
- `checkpoints/`      `latest.npz` (params, optimiser state, step, metrics so far: enough to resume)
                      and `params_{step:09d}.npz` (params at every evaluation, for analysis).

Randomness: the batch at step i is drawn from fold_in(data_key, i), so the data position is the step
count and a resumed run draws exactly the batches an uninterrupted run would. All files are written
to a temporary file and renamed into place.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from toymodel.files import atomic_path, write_json
from transformer.data import (
    CONTEXT_EXEMPLAR, EVALUATORS, ICL_LABELS, TRAIN_DISTS, Exemplars, Sampling, eval_sets, from_table, gaussian_clusters,
    load_embeddings, restrict, sample,
)
from transformer.evaluate import cross_entropy, evaluate_all
from transformer.model import POS_INITS, ModelConfig, forward, init_params, label_table_name

COLUMNS = ["step", "sequences", "train_loss", "train_acc"] + [f"{n}_{m}" for n in EVALUATORS[1:] for m in ("acc", "loss")]
TRANSIENT_PEAK, TRANSIENT_END = 0.7, 0.6
TRANSIENT_RULE = (
    f"transient = (max ICL accuracy >= {TRANSIENT_PEAK}) and (ICL accuracy at the last evaluation <= "
    f"{TRANSIENT_END}) and the peak comes before the last evaluation"
)


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a run (defaults: the `cpu` preset). Sizes in sequences; `exemplars=0` draws a
    fresh exemplar every time."""

    classes: int = 2048
    exemplars: int = 0
    noise: float = 0.65
    dim: int = 64
    embeddings: str | None = None
    train_dist: str = "bursty"
    context_exemplar: str = "replacement"  # the query class's context exemplar: "replacement" (official) or "distinct"
    icl_labels: str = "01"  # the ICL evaluator's labels: "01" (official) or "other" (owned by neither class)
    pos_init: str = "uniform"  # positional table init: "uniform" ±1/sqrt(32) (official) or "normal" N(0, 0.02²)
    d_model: int = 64
    heads: int = 8
    layers: int = 2
    tie_labels: bool = True
    label_lr_scale: float = 0.1
    label_init_std: float = 1.0
    lr: float = 1e-3
    weight_decay: float = 0.03
    label_weight_decay: float | None = 1.0  # the label table's decoupled decay (None: weight_decay)
    batch: int = 32
    sequences: int = 4_800_000
    eval_every: int = 48_000
    eval_size: int = 2000
    eval_classes: int | None = None  # evaluators use the first this many classes (None: all; paper: 1,600)
    eval_exemplars: int | None = None  # ... and the first this many exemplars of a fixed table (paper: 5)
    stop_when_icl_below: float = 0.6  # > 0: end once ICL peaked >= TRANSIENT_PEAK and fell below this
    seed: int = 0
    init_layer: str | None = None  # "L=RUN_DIR@STEP[,...]": start layer L (1-based, or embed) from that checkpoint
    freeze_layer: str | None = None  # "L[,...]": these layers (1-based, or embed) get no updates (clamped training)

    def model_config(self) -> ModelConfig:
        return ModelConfig(
            classes=self.classes, dim=self.dim, d_model=self.d_model, heads=self.heads,
            layers=self.layers, tie_labels=self.tie_labels, label_init_std=self.label_init_std, pos_init=self.pos_init,
        )

    @property
    def sampling(self) -> Sampling:
        return Sampling(context_exemplar=self.context_exemplar, icl_labels=self.icl_labels)

    @property
    def steps_per_eval(self) -> int:
        return self.eval_every // self.batch

    @property
    def total_steps(self) -> int:
        return self.sequences // self.batch


def check_config(cfg: TrainConfig) -> list[tuple[str, str]]:
    """Problems with `cfg` as (option, what is allowed) pairs; empty if it is valid."""
    bad = []
    for name in ("classes", "dim", "d_model", "heads", "layers", "batch", "sequences", "eval_every", "eval_size"):
        if getattr(cfg, name) <= 0:
            bad.append((name, "must be a positive integer"))
    if cfg.classes < 4:
        bad.append(("classes", "must be >= 4 (the ICL evaluator needs two classes and two other labels)"))
    for name in ("eval_classes", "eval_exemplars"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < (4 if name == "eval_classes" else 1):
            bad.append((name, f"must be an integer >= {4 if name == 'eval_classes' else 1} (or left out: all)"))
    if cfg.exemplars < 0:
        bad.append(("exemplars", "must be >= 0 (0 draws a fresh exemplar every time)"))
    if not (cfg.noise >= 0 and math.isfinite(cfg.noise)):
        bad.append(("noise", "must be a finite number >= 0"))
    for name in ("lr", "label_lr_scale", "label_init_std"):
        if not (getattr(cfg, name) > 0 and math.isfinite(getattr(cfg, name))):
            bad.append((name, "must be a finite number > 0"))
    for name in ("weight_decay", "label_weight_decay"):
        value = getattr(cfg, name)
        if value is not None and not (value >= 0 and math.isfinite(value)):
            bad.append((name, "must be a finite number >= 0"))
    if not (0 <= cfg.stop_when_icl_below < 1):
        bad.append(("stop_when_icl_below", "must be in [0, 1) (0 = never stop early)"))
    for name, allowed in (("train_dist", TRAIN_DISTS), ("context_exemplar", CONTEXT_EXEMPLAR), ("icl_labels", ICL_LABELS),
                          ("pos_init", POS_INITS)):
        if getattr(cfg, name) not in allowed:
            bad.append((name, f"must be one of {', '.join(allowed)}"))
    if cfg.heads > 0 and cfg.d_model % cfg.heads:
        bad.append(("heads", "must divide d_model"))
    if cfg.batch > 0 and cfg.eval_every > 0 and cfg.eval_every % cfg.batch:
        bad.append(("eval_every", f"must be a multiple of the batch size ({cfg.batch})"))
    if cfg.eval_every > 0 and cfg.sequences > 0 and cfg.sequences % cfg.eval_every:
        bad.append(("sequences", f"must be a multiple of eval_every ({cfg.eval_every})"))
    if cfg.layers > 0:
        try:
            freeze_layers(cfg)
        except ValueError as err:
            bad.append(("freeze_layer", str(err)))
        try:
            for layer, run, step in init_layers(cfg):
                _layer_source(cfg, layer, run, step)
        except ValueError as err:
            bad.append(("init_layer", str(err)))
    return bad


# ---- clamped training: layers from another run's checkpoint, frozen layers -------------------------


EMBED = "embed"  # the parameters outside the blocks: exemplar, position and label embeddings, final norm, unembedding
FIRST_HALF = "first_half"  # the paper's cut at the residual stream after block 0: all embeddings and block 0
SECOND_HALF = "second_half"  # ... and the rest: blocks 1.., the final layer norm and the unembedding
GROUPS = (FIRST_HALF, SECOND_HALF, EMBED)


def _second_half(name: str) -> bool:
    if name.startswith("blocks."):
        return int(name.split(".")[1]) >= 1
    return name.startswith(("ln_final.", "unembed."))


def in_layer(name: str, layer: int | str) -> bool:
    """Is parameter `name` part of `layer`: a 1-based block number (its layer norm and attention, as
    on the command line), `embed` (everything outside the blocks), or one half of the paper's cut at
    the residual stream after block 0 (`blocks.0.hook_resid_post`, as the official grafting code):
    `first_half` = exemplar, label and position embeddings and block 0; `second_half` = the later
    blocks, the final layer norm and the unembedding (with tied labels the shared table is the
    unembedding, so it goes with the second half)."""
    if layer == EMBED:
        return not name.startswith("blocks.")
    if layer == FIRST_HALF:
        return not _second_half(name)
    if layer == SECOND_HALF:
        return _second_half(name)
    return name.startswith(f"blocks.{layer - 1}.")


def parse_layer(text: str, layers: int) -> int | str:
    """A layer or group name from the command line: 1..layers, or one of GROUPS; ValueError if not."""
    if text in GROUPS:
        return text
    try:
        layer = int(text)
    except ValueError:
        layer = 0
    if not 1 <= layer <= layers:
        raise ValueError(f"layers are 1..{layers} or a group ({', '.join(GROUPS)}), got {text!r}")
    return layer


def freeze_layers(cfg: TrainConfig) -> tuple[int | str, ...]:
    """The frozen layers of `cfg.freeze_layer` ("2", "1,2", "embed"); ValueError if malformed."""
    if not cfg.freeze_layer:
        return ()
    layers = tuple(parse_layer(part.strip(), cfg.layers) for part in cfg.freeze_layer.split(","))
    if len(set(layers)) != len(layers):
        raise ValueError(f"each layer once, got {cfg.freeze_layer!r}")
    return layers


def init_layers(cfg: TrainConfig) -> list[tuple[int | str, Path, int | None]]:
    """(layer, run directory, step or None = latest) for each "L=RUN_DIR@STEP" in `cfg.init_layer`."""
    if not cfg.init_layer:
        return []
    out = []
    for part in cfg.init_layer.split(","):
        layer, eq, rest = part.strip().partition("=")
        if not eq or not rest:
            raise ValueError(f"expected L=RUN_DIR@STEP (e.g. 2=runs/ciwl@75000), got {part.strip()!r}")
        run, at, step = rest.rpartition("@") if "@" in rest else (rest, "", "")
        try:
            step_value = int(step) if at else None
        except ValueError:
            raise ValueError(f"STEP must be a checkpoint step (an integer), got {step!r}") from None
        out.append((parse_layer(layer.strip(), cfg.layers), Path(run), step_value))
    if len({layer for layer, _, _ in out}) != len(out):
        raise ValueError(f"each layer once, got {cfg.init_layer!r}")
    return out


def _layer_source(cfg: TrainConfig, layer: int | str, run: Path, step: int | None) -> dict[str, np.ndarray]:
    """Layer `layer`'s parameters from `run`'s checkpoint at `step`; ValueError (one line) if the run,
    the checkpoint or the layer's shapes do not fit `cfg`."""
    if not (run / "config.json").is_file():
        raise ValueError(f"{run} is not a transformer run directory (no config.json)")
    other = TrainConfig(**json.loads((run / "config.json").read_text()))
    arch = ("classes", "dim", "d_model", "heads", "layers", "tie_labels")
    differ = [f"{k} {getattr(other, k)} vs {getattr(cfg, k)}" for k in arch if getattr(other, k) != getattr(cfg, k)]
    if differ:
        raise ValueError(f"{run} is a run of another model ({', '.join(differ)})")
    try:
        params, _ = load_checkpoint(run, other, step)
    except FileNotFoundError:
        raise ValueError(f"{run} has no checkpoint at step {step} (see its checkpoints/ folder)") from None
    mine = jax.eval_shape(lambda: init_params(jax.random.PRNGKey(0), cfg.model_config()))
    names = [n for n in mine if in_layer(n, layer)]
    if any(n not in params or params[n].shape != mine[n].shape for n in names):
        raise ValueError(f"layer {layer} of {run} does not have this model's shapes")
    return {n: np.asarray(params[n]) for n in names}


def initial_params(cfg: TrainConfig) -> dict[str, jax.Array]:
    """The run's initial parameters: fresh from its seed, with `init_layer` layers copied in."""
    params = init_params(keys(cfg.seed)["init"], cfg.model_config())
    for layer, run, step in init_layers(cfg):
        params.update({n: jnp.asarray(v) for n, v in _layer_source(cfg, layer, run, step).items()})
    return params


# ---- atomic files -----------------------------------------------------------------------------------


def write_metrics(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([int(r[c]) if c in ("step", "sequences") else f"{float(r[c]):.6g}" for c in COLUMNS])


def read_metrics(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: (int(v) if k in ("step", "sequences") else float(v)) for k, v in r.items()} for r in csv.DictReader(fh)]


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


# ---- the pieces of a run ---------------------------------------------------------------------------


def keys(seed: int) -> dict[str, jax.Array]:
    """Independent PRNG streams of a run: the exemplar source, the init, the training data, the eval sets."""
    root = jax.random.PRNGKey(seed)
    return {name: jax.random.fold_in(root, i) for i, name in enumerate(("source", "init", "data", "eval"))}


def resolve_embeddings(cfg: TrainConfig, classes: int | None = None, exemplars: int | None = None) -> TrainConfig:
    """With an embeddings file, take classes/exemplars/dim from it (the first `classes` classes and
    `exemplars` exemplars when given, else all). Raises ValueError if the file is missing or malformed."""
    if cfg.embeddings is None:
        return cfg
    arr = load_embeddings(cfg.embeddings, classes, exemplars)
    return dataclasses.replace(cfg, classes=arr.shape[0], exemplars=arr.shape[1], dim=arr.shape[2], noise=0.0)


def make_source(cfg: TrainConfig) -> Exemplars:
    if cfg.embeddings is not None:
        return from_table(load_embeddings(cfg.embeddings, cfg.classes, cfg.exemplars or None))
    return gaussian_clusters(keys(cfg.seed)["source"], cfg.classes, cfg.dim, cfg.noise, cfg.exemplars)


def make_eval_sets(cfg: TrainConfig, source: Exemplars) -> dict:
    """The run's held-out evaluation sets (fixed by its seed), from the first `eval_classes` classes
    and `eval_exemplars` exemplars of `source` (all of them when those are None or larger)."""
    return eval_sets(restrict(source, cfg.eval_classes, cfg.eval_exemplars), keys(cfg.seed)["eval"], cfg.eval_size, cfg.train_dist,
                     cfg.sampling)


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """AdamW (Adam when weight_decay = 0); the label table's step is scaled by `label_lr_scale`;
    frozen layers get zero updates (no decay either), so they stay bit-identical."""
    table = label_table_name(cfg.model_config())
    table_decay = cfg.weight_decay if cfg.label_weight_decay is None else cfg.label_weight_decay
    frozen = freeze_layers(cfg)

    def labels(params):
        return {k: "frozen" if any(in_layer(k, f) for f in frozen) else "table" if k == table else "rest" for k in params}

    return optax.multi_transform(
        {
            "table": optax.adamw(cfg.lr * cfg.label_lr_scale, weight_decay=table_decay),
            "rest": optax.adamw(cfg.lr, weight_decay=cfg.weight_decay),
            "frozen": optax.set_to_zero(),
        },
        labels,
    )


def make_step(cfg: TrainConfig, tx: optax.GradientTransformation):
    """step(params, opt_state, source, data_key, i) -> (params, opt_state, loss): one Adam step on batch i."""
    mcfg = cfg.model_config()

    def loss_fn(params, batch):
        return cross_entropy(forward(params, mcfg, batch.x, batch.y), batch.target).mean()

    def step(params, opt_state, source, data_key, i):
        batch = sample(source, jax.random.fold_in(data_key, i), cfg.batch, cfg.train_dist, cfg.sampling)
        batch = _shard_batch(batch)
        loss, grads = jax.value_and_grad(loss_fn)(params, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def data_mesh() -> jax.sharding.Mesh | None:
    """A 1-D mesh over the accelerators when there are several (batch split across them), else None.

    Host CPU "devices" are not used this way: for a model this small, splitting a batch of 16 over
    two CPU devices measured no faster than one; on a CPU, `train_seeds` runs seeds in parallel instead.
    """
    devices = jax.devices()
    if len(devices) < 2 or devices[0].platform == "cpu":
        return None
    return jax.sharding.Mesh(np.array(devices), ("data",))


def _shard_batch(batch):
    """With a data mesh and a divisible batch, split the batch across its devices."""
    mesh = data_mesh()
    if mesh is None or batch.target.shape[0] % mesh.size:
        return batch
    spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    return jax.tree_util.tree_map(lambda a: jax.lax.with_sharding_constraint(a, spec), batch)


def _place(tree):
    """Replicate arrays over the data mesh if there is one; else commit them to the default device."""
    mesh = data_mesh()
    where = jax.devices()[0] if mesh is None else jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.device_put(tree, where)


def make_chunk(step, n_steps: int):
    """chunk(params, opt_state, source, data_key, start) -> (params, opt_state, mean loss): steps start.. start+n-1."""

    def chunk(params, opt_state, source, data_key, start):
        def body(carry, i):
            p, o, loss = step(*carry, source, data_key, i)
            return (p, o), loss

        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), start + jnp.arange(n_steps))
        return params, opt_state, losses.mean()

    return jax.jit(chunk)


def transience(rows: list[dict]) -> dict:
    """ICL peak/end and the `transient` verdict (TRANSIENT_RULE) from metrics rows."""
    icl = np.array([r["icl_acc"] for r in rows])
    peak = int(np.argmax(icl))
    last = rows[-1]
    out = {
        "icl_peak_acc": float(icl[peak]),
        "icl_peak_sequences": int(rows[peak]["sequences"]),
        "icl_final_acc": float(last["icl_acc"]),
        "transient": bool(icl[peak] >= TRANSIENT_PEAK and last["icl_acc"] <= TRANSIENT_END and peak < len(rows) - 1),
        "transient_rule": TRANSIENT_RULE,
    }
    for name in ("train", "ciwl", "flip", "iwl"):
        vals = np.array([r[f"{name}_acc"] for r in rows])
        out[f"{name}_final_acc"] = float(vals[-1])
        out[f"{name}_max_acc"] = float(vals.max())
        out[f"{name}_acc_at_icl_peak"] = float(vals[peak])
    return out


SIGNATURES = {
    "icl_rises": "ICL accuracy peaks >= 0.9",
    "icl_fades": "ICL accuracy at the end <= 0.6, after the peak",
    "ciwl_wins": "CIWL accuracy at the end >= 0.95",
    "flip_high": "flip accuracy >= 0.8 at some evaluation (ICL dominates)",
    "flip_low": "flip accuracy at the end <= 0.1",
    "iwl_low": "IWL (full) accuracy <= 0.2 at every evaluation",
}


def signatures(rows: list[dict]) -> dict[str, bool]:
    """Which of the paper's transformer signatures (SIGNATURES) metrics rows show, plus `all`."""
    icl = np.array([r["icl_acc"] for r in rows])
    flip = np.array([r["flip_acc"] for r in rows])
    peak = int(np.argmax(icl))
    out = {
        "icl_rises": bool(icl[peak] >= 0.9),
        "icl_fades": bool(icl[-1] <= 0.6 and peak < len(rows) - 1),
        "ciwl_wins": bool(rows[-1]["ciwl_acc"] >= 0.95),
        "flip_high": bool(flip.max() >= 0.8),
        "flip_low": bool(flip[-1] <= 0.1),
        "iwl_low": bool(max(r["iwl_acc"] for r in rows) <= 0.2),
    }
    out["all"] = all(out.values())
    return out


def faded(rows: list[dict], below: float) -> bool:
    """Early-stop rule: ICL once reached TRANSIENT_PEAK and is now below `below` (0 disables)."""
    if below <= 0:
        return False
    icl = [r["icl_acc"] for r in rows]
    return max(icl) >= TRANSIENT_PEAK and icl[-1] < below


def plot_curves(path: Path, rows: list[dict], title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seqs = np.array([r["sequences"] for r in rows])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    styles = {"train": ("k", "train"), "icl": ("C0", "ICL"), "ciwl": ("C1", "CIWL"), "flip": ("C2", "flip"), "iwl": ("C3", "IWL (full acc.)")}
    for name, (color, label) in styles.items():
        ax.plot(seqs, [r[f"{name}_acc"] for r in rows], color=color, label=label, lw=1.6 if name != "train" else 1.0)
        ax2.plot(seqs, [r[f"{name}_loss"] for r in rows], color=color, label=label)
    ax.axhline(0.5, color="grey", lw=0.6, ls=":")
    ax.set(xlabel="sequences seen", ylabel="accuracy (in-context; IWL full)", ylim=(-0.02, 1.02), title=title)
    ax2.set(xlabel="sequences seen", ylabel="cross-entropy", yscale="log", title="loss")
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def _flat(tree) -> dict[str, np.ndarray]:
    return {f"{i:04d}": np.asarray(a) for i, a in enumerate(jax.tree_util.tree_leaves(tree))}


def _unflat(like, arrays: dict[str, np.ndarray]):
    leaves, treedef = jax.tree_util.tree_flatten(like)
    if len(arrays) != len(leaves):
        raise ValueError("checkpoint does not match this configuration")
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(arrays[f"{i:04d}"], l.dtype) for i, l in enumerate(leaves)])


def load_checkpoint(run: Path, cfg: TrainConfig, step: int | None = None):
    """(params, step) of run's checkpoint at `step` (None: the latest)."""
    mcfg = cfg.model_config()
    like = init_params(keys(cfg.seed)["init"], mcfg)
    path = run / "checkpoints" / ("latest.npz" if step is None else f"params_{step:09d}.npz")
    if not path.is_file():
        raise FileNotFoundError(path)
    with np.load(path) as f:
        params = {k[len("params/") :]: jnp.asarray(f[k]) for k in f.files if k.startswith("params/")}
        saved_step = int(f["step"])
    if set(params) != set(like):
        raise ValueError(f"{path} does not match the run's model")
    return params, saved_step


def run_problems(cfg: TrainConfig, out: Path, resume: bool) -> list[tuple[str, str]]:
    """Why training into `out` must not start (checked before anything is written)."""
    config_file = out / "config.json"
    if resume:
        if not (out / "checkpoints" / "latest.npz").is_file() or not config_file.is_file():
            return [("resume", f"{out} holds no run to resume (no config.json and checkpoints/latest.npz)")]
        saved = json.loads(config_file.read_text())
        mine = dataclasses.asdict(cfg)
        diff = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
        if diff:
            return [("resume", f"{out} was run with a different config ({', '.join(diff)} differ)")]
    elif out.exists() and any(out.iterdir()):
        return [("out", f"{out} is not empty; choose a new directory or pass --resume")]
    return []


def train(cfg: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True, max_chunks: int | None = None,
          should_stop=None) -> dict:
    """Train, evaluate and checkpoint into `out`; returns the summary dict.

    `max_chunks` stops after that many chunks in this call (as if killed; used to test --resume).
    `should_stop(rows) -> bool`, called after each evaluation with the metrics rows so far, ends the
    run early when it returns True (searches use it to skip runs whose outcome is already clear).
    """
    out = Path(out)
    problems = check_config(cfg) + run_problems(cfg, out, resume)
    if problems:
        raise ValueError("; ".join(f"{k}: {v}" for k, v in problems))
    t_start = time.perf_counter()
    mcfg = cfg.model_config()
    k = keys(cfg.seed)
    source = make_source(cfg)
    sets = make_eval_sets(cfg, source)
    tx = make_optimizer(cfg)
    params = _place(initial_params(cfg))
    opt_state = _place(tx.init(params))
    source, sets = _place(source), _place(sets)
    ckpt_dir = out / "checkpoints"

    evaluate = jax.jit(lambda p, s: evaluate_all(p, mcfg, s))
    chunk_fn = make_chunk(make_step(cfg, tx), cfg.steps_per_eval)
    step0 = jnp.int32(0)
    t0 = time.perf_counter()
    chunk_fn = chunk_fn.lower(params, opt_state, source, k["data"], step0).compile()
    evaluate = evaluate.lower(params, sets).compile()
    compile_s = time.perf_counter() - t0

    if resume:
        with np.load(ckpt_dir / "latest.npz") as f:
            params = _place({n[len("params/") :]: jnp.asarray(f[n]) for n in f.files if n.startswith("params/")})
            opt_state = _place(_unflat(opt_state, {n[len("opt/") :]: f[n] for n in f.files if n.startswith("opt/")}))
            step = int(f["step"])
            rows = [dict(zip(COLUMNS, r)) for r in f["metrics"].tolist()]
            prior = {n: float(f[n]) for n in ("wall_time_s", "train_time_s", "compile_s")}
        for r in rows:
            r["step"], r["sequences"] = int(r["step"]), int(r["sequences"])
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", dataclasses.asdict(cfg))
        step, rows = 0, []
        prior = {"wall_time_s": 0.0, "train_time_s": 0.0, "compile_s": 0.0}
    train_time = 0.0

    def record(params, step):
        ev = {n: float(v) for n, v in evaluate(params, sets).items()}
        rows.append({"step": step, "sequences": step * cfg.batch, **ev})

    def save(params, opt_state, step):
        wall = prior["wall_time_s"] + time.perf_counter() - t_start
        save_npz(ckpt_dir / f"params_{step:09d}.npz", {"step": np.int64(step), **{f"params/{n}": np.asarray(v) for n, v in params.items()}})
        save_npz(
            ckpt_dir / "latest.npz",
            {
                "step": np.int64(step),
                "metrics": np.array([[r[c] for c in COLUMNS] for r in rows], np.float64),
                "wall_time_s": np.float64(wall),
                "train_time_s": np.float64(prior["train_time_s"] + train_time),
                "compile_s": np.float64(prior["compile_s"] + compile_s),
                **{f"params/{n}": np.asarray(v) for n, v in params.items()},
                **{f"opt/{n}": v for n, v in _flat(opt_state).items()},
            },
        )
        write_metrics(out / "metrics.csv", rows)
        summary = {
            "config": dataclasses.asdict(cfg),
            "steps": step,
            "sequences_seen": step * cfg.batch,
            "wall_time_s": wall,
            "compile_s": prior["compile_s"] + compile_s,
            "train_time_s": prior["train_time_s"] + train_time,
            "steps_per_s": step / max(prior["train_time_s"] + train_time, 1e-9),
            "devices": [str(d) for d in jax.devices()],
            "stopped_early": bool(faded(rows, cfg.stop_when_icl_below)),
            **transience(rows),
        }
        write_json(out / "summary.json", summary)
        return summary

    def plot():
        plot_curves(out / "curves.png", rows, title=f"seed {cfg.seed}, {cfg.train_dist}, K={cfg.classes}")

    if not rows:
        record(params, 0)
        save(params, opt_state, 0)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,} seq"),
        TimeElapsedColumn(), TimeRemainingColumn(), disable=not progress,
    )
    chunks_done = 0
    with bar:
        task = bar.add_task("training", total=cfg.sequences, completed=step * cfg.batch)
        while step < cfg.total_steps and not faded(rows, cfg.stop_when_icl_below) and not (should_stop and should_stop(rows)):
            if max_chunks is not None and chunks_done >= max_chunks:
                break
            t0 = time.perf_counter()
            params, opt_state, _ = chunk_fn(params, opt_state, source, k["data"], jnp.int32(step))
            jax.block_until_ready(params)
            train_time += time.perf_counter() - t0
            step += cfg.steps_per_eval
            chunks_done += 1
            record(params, step)
            save(params, opt_state, step)
            if chunks_done % 10 == 0:
                plot()
            r = rows[-1]
            bar.update(task, completed=step * cfg.batch, description=(
                f"ICL {r['icl_acc']:.2f} CIWL {r['ciwl_acc']:.2f} flip {r['flip_acc']:.2f} IWL {r['iwl_acc']:.2f}"
            ))
    plot()
    return json.loads((out / "summary.json").read_text())


def _train_one(args):
    cfg, out, resume = args
    return train(cfg, out, resume=resume, progress=False)


def seed_dir(out: str | Path, seed: int) -> Path:
    return Path(out) / f"seed_{seed}"


def train_seeds(cfg: TrainConfig, out: str | Path, seeds: list[int], jobs: int | None = None, resume: bool = False) -> list[dict]:
    """Train one run per seed into `out/seed_{s}`, `jobs` processes at a time (default: one per CPU).

    Separate processes use the cores better than one process with more threads for a model this
    small. Writes `out/seeds.json` (each seed's ICL peak and end, final evaluator accuracies,
    verdict) and returns the per-seed summaries.
    """
    import multiprocessing as mp

    out = Path(out)
    runs = [(dataclasses.replace(cfg, seed=s), seed_dir(out, s), resume) for s in seeds]
    for c, d, r in runs:
        problems = check_config(c) + run_problems(c, d, r)
        if problems:
            raise ValueError("; ".join(f"{k}: {v}" for k, v in problems))
    jobs = jobs or os.cpu_count() or 1
    with mp.get_context("spawn").Pool(min(jobs, len(runs))) as pool:
        summaries = pool.map(_train_one, runs, chunksize=1)
    keep = ("icl_peak_acc", "icl_peak_sequences", "icl_final_acc", "ciwl_final_acc", "flip_final_acc", "flip_max_acc",
            "iwl_final_acc", "iwl_max_acc", "transient", "wall_time_s", "steps_per_s")
    table = {"config": dataclasses.asdict(cfg), "transient_rule": TRANSIENT_RULE,
             "seeds": {str(s): {k: sm[k] for k in keep} for s, sm in zip(seeds, summaries)}}
    table["transient_seeds"] = sum(sm["transient"] for sm in summaries)
    write_json(out / "seeds.json", table)
    return summaries
