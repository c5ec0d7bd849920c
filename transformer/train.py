"""Training: Adam(W) on sequences drawn inside a jitted step, scanned over chunks between evaluations.

`train(cfg, out)` writes a run directory (its files: `transformer.checkpoints`). Randomness: the
batch at step i is drawn from fold_in(data_key, i), so the data position is the step count and a
resumed run draws exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from runio import write_json
from transformer.checkpoints import _flat, _unflat, donor_problems, layer_source, metrics_rows, run_problems, save_npz
from transformer.config import TrainConfig, check_config, freeze_layers, in_layer, init_layers, keys, make_eval_sets, make_source
from transformer.data import sample
from transformer.evaluate import cross_entropy, evaluate_all
from transformer.model import forward, init_params, label_table_name
from transformer.outcomes import faded, transience
from transformer.plots import plot_curves
from transformer.rundir import COLUMNS, RunDir, write_metrics


def initial_params(cfg: TrainConfig) -> dict[str, jax.Array]:
    """The run's initial parameters: fresh from its seed, with `init_layer` layers copied in."""
    params = init_params(keys(cfg.seed)["init"], cfg.model_config())
    for layer, run, step in init_layers(cfg):
        params.update({n: jnp.asarray(v) for n, v in layer_source(cfg, layer, run, step).items()})
    return params


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


def train(cfg: TrainConfig, out: str | Path, resume: bool = False, progress: bool = True, max_chunks: int | None = None,
          should_stop=None) -> dict:
    """Train, evaluate and checkpoint into `out`; returns the summary dict.

    `max_chunks` stops after that many chunks in this call (as if killed; used to test --resume).
    `should_stop(rows) -> bool`, called after each evaluation with the metrics rows so far, ends the
    run early when it returns True (searches use it to skip runs whose outcome is already clear).
    """
    out = Path(out)
    problems = check_config(cfg) + donor_problems(cfg) + run_problems(cfg, out, resume)
    if problems:
        raise ValueError("; ".join(f"{k}: {v}" for k, v in problems))
    t_start = time.perf_counter()
    mcfg = cfg.model_config()
    k = keys(cfg.seed, cfg.data_seed)
    source = make_source(cfg)
    sets = make_eval_sets(cfg, source)
    tx = make_optimizer(cfg)
    params = _place(initial_params(cfg))
    opt_state = _place(tx.init(params))
    source, sets = _place(source), _place(sets)
    run = RunDir(out)

    evaluate = jax.jit(lambda p, s: evaluate_all(p, mcfg, s))
    chunk_fn = make_chunk(make_step(cfg, tx), cfg.steps_per_eval)
    step0 = jnp.int32(0)
    t0 = time.perf_counter()
    chunk_fn = chunk_fn.lower(params, opt_state, source, k["data"], step0).compile()
    evaluate = evaluate.lower(params, sets).compile()
    compile_s = time.perf_counter() - t0

    if resume:
        with np.load(run.latest) as f:
            params = _place({n[len("params/") :]: jnp.asarray(f[n]) for n in f.files if n.startswith("params/")})
            opt_state = _place(_unflat(opt_state, {n[len("opt/") :]: f[n] for n in f.files if n.startswith("opt/")}))
            step = int(f["step"])
            rows = metrics_rows(f["metrics"], [str(c) for c in f["metric_columns"]] if "metric_columns" in f.files else None)
            prior = {n: float(f[n]) for n in ("wall_time_s", "train_time_s", "compile_s")}
    else:
        out.mkdir(parents=True, exist_ok=True)
        step, rows = 0, []
        prior = {"wall_time_s": 0.0, "train_time_s": 0.0, "compile_s": 0.0}
    write_json(run.config_file, dataclasses.asdict(cfg))  # a resumed run's is the same, or extended to more sequences
    train_time = 0.0

    def record(params, step):
        ev = {n: float(v) for n, v in evaluate(params, sets).items()}
        rows.append({"step": step, "sequences": step * cfg.batch, **ev})

    def save(params, opt_state, step):
        wall = prior["wall_time_s"] + time.perf_counter() - t_start
        save_npz(run.params_file(step), {"step": np.int64(step), **{f"params/{n}": np.asarray(v) for n, v in params.items()}})
        save_npz(
            run.latest,
            {
                "step": np.int64(step),
                "metrics": np.array([[r[c] for c in COLUMNS] for r in rows], np.float64),
                "metric_columns": np.array(COLUMNS),
                "wall_time_s": np.float64(wall),
                "train_time_s": np.float64(prior["train_time_s"] + train_time),
                "compile_s": np.float64(prior["compile_s"] + compile_s),
                **{f"params/{n}": np.asarray(v) for n, v in params.items()},
                **{f"opt/{n}": v for n, v in _flat(opt_state).items()},
            },
        )
        write_metrics(run.metrics_file, rows)
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
        write_json(run.summary_file, summary)
        return summary

    def plot():
        plot_curves(run.curves_file, rows, title=f"seed {cfg.seed}, {cfg.train_dist}, K={cfg.classes}")

    if not rows:
        record(params, 0)
        save(params, opt_state, 0)
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
    return RunDir(out).summary()

