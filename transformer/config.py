"""A run's configuration: every knob (`TrainConfig`), its validation, the parts of the model that
clamping and grafting address, and what the config determines (PRNG streams, exemplar source,
evaluation sets).

`check_config` returns (field, what is allowed) pairs; the CLI maps each field to its option. It
checks values only; donor runs named by `init_layer` are checked on disk by
`checkpoints.donor_problems`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import jax

from transformer.data import (
    CONTEXT_EXEMPLAR, ICL_LABELS, TRAIN_DISTS, Exemplars, Sampling, eval_sets, from_table, gaussian_clusters, load_embeddings,
    restrict, zipf_logits,
)
from transformer.model import POS_INITS, ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a run (defaults: the `cpu` preset). Sizes in sequences; `exemplars=0` draws a
    fresh exemplar every time."""

    classes: int = 2048
    exemplars: int = 0
    noise: float = 0.65
    dim: int = 64
    zipf: float = 0.0  # > 0: training classes drawn with p_k ∝ 1/(k+1)^zipf (evaluators stay uniform)
    superclasses: int = 0  # > 0: classes grouped into this many superclasses (data.gaussian_clusters)
    class_spread: float = 1.0  # spread of class means around their superclass centre (with superclasses > 0)
    embeddings: str | None = None
    train_dist: str = "bursty"
    context_exemplar: str = "replacement"  # the query class's context exemplar: "replacement" (official) or "distinct"
    icl_labels: str = "01"  # the ICL evaluator's labels: "01" (official) or "other" (owned by neither class)
    pos_init: str = "uniform"  # positional table init: "uniform" ±1/sqrt(32) (official) or "normal" N(0, 0.02²)
    match_query_fraction: float = 0.0  # bursty training: this fraction of sequences match-query (data.Sampling)
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
    data_seed: int | None = None  # the exemplars', training data's and eval sets' seed (None: seed; the init is always seed's)
    init_layer: str | None = None  # "L=RUN_DIR@STEP[,...]": start layer L (1-based, or embed) from that checkpoint
    freeze_layer: str | None = None  # "L[,...]": these layers (1-based, or embed) get no updates (clamped training)

    def model_config(self) -> ModelConfig:
        return ModelConfig(
            classes=self.classes, dim=self.dim, d_model=self.d_model, heads=self.heads,
            layers=self.layers, tie_labels=self.tie_labels, label_init_std=self.label_init_std, pos_init=self.pos_init,
        )

    @property
    def sampling(self) -> Sampling:
        return Sampling(context_exemplar=self.context_exemplar, icl_labels=self.icl_labels,
                        match_query_fraction=self.match_query_fraction)

    @property
    def steps_per_eval(self) -> int:
        return self.eval_every // self.batch

    @property
    def total_steps(self) -> int:
        return self.sequences // self.batch


# Fields added after runs were already on disk, with the value that reproduces what those runs did
# (a config.json without the field was written before the field existed).
LEGACY = {"context_exemplar": "distinct", "icl_labels": "other", "pos_init": "normal", "superclasses": 0,
          "class_spread": 1.0, "zipf": 0.0, "match_query_fraction": 0.0, "data_seed": None}


def config_from_dict(saved: dict) -> TrainConfig:
    """A TrainConfig from a run's config.json (fields it predates take their LEGACY values)."""
    return TrainConfig(**{**{k: v for k, v in LEGACY.items() if k not in saved}, **saved})


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
    if not (cfg.zipf >= 0 and math.isfinite(cfg.zipf)):
        bad.append(("zipf", "must be a finite number >= 0 (0: uniform classes)"))
    if cfg.superclasses < 0:
        bad.append(("superclasses", "must be >= 0 (0: independent class means)"))
    if not (cfg.class_spread > 0 and math.isfinite(cfg.class_spread)):
        bad.append(("class_spread", "must be a finite number > 0"))
    for name in ("lr", "label_lr_scale", "label_init_std"):
        if not (getattr(cfg, name) > 0 and math.isfinite(getattr(cfg, name))):
            bad.append((name, "must be a finite number > 0"))
    for name in ("weight_decay", "label_weight_decay"):
        value = getattr(cfg, name)
        if value is not None and not (value >= 0 and math.isfinite(value)):
            bad.append((name, "must be a finite number >= 0"))
    if cfg.data_seed is not None and cfg.data_seed < 0:
        bad.append(("data_seed", "must be an integer >= 0 (or left out: the seed)"))
    if not (0 <= cfg.match_query_fraction <= 1):
        bad.append(("match_query_fraction", "must be in [0, 1] (0: bursty, 1: every sequence match-query)"))
    elif cfg.match_query_fraction > 0 and cfg.train_dist != "bursty":
        bad.append(("match_query_fraction", "mixes match-query into bursty training: needs train_dist bursty"))
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
            init_layers(cfg)
        except ValueError as err:
            bad.append(("init_layer", str(err)))
    return bad



# ---- parts of the model: layers and the paper's two halves -------------------------------------------


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



# ---- what a config determines: PRNG streams, exemplar source, evaluation sets ---------------------------


def keys(seed: int, data_seed: int | None = None) -> dict[str, jax.Array]:
    """Independent PRNG streams of a run: the exemplar source, the init, the training data, the eval
    sets; all from `seed`, or with `data_seed` the source, data and eval streams from it (the init
    stays `seed`'s: to tell whether the draw or the init decides a run)."""
    root = jax.random.PRNGKey(seed)
    data_root = root if data_seed is None else jax.random.PRNGKey(data_seed)
    return {name: jax.random.fold_in(root if name == "init" else data_root, i)
            for i, name in enumerate(("source", "init", "data", "eval"))}


def resolve_embeddings(cfg: TrainConfig, classes: int | None = None, exemplars: int | None = None) -> TrainConfig:
    """With an embeddings file, take classes/exemplars/dim from it (the first `classes` classes and
    `exemplars` exemplars when given, else all). Raises ValueError if the file is missing or malformed."""
    if cfg.embeddings is None:
        return cfg
    arr = load_embeddings(cfg.embeddings, classes, exemplars)
    return dataclasses.replace(cfg, classes=arr.shape[0], exemplars=arr.shape[1], dim=arr.shape[2], noise=0.0)


def make_source(cfg: TrainConfig) -> Exemplars:
    """The training exemplar source (with its Zipf class law, if any; `make_eval_sets` drops it)."""
    if cfg.embeddings is not None:
        source = from_table(load_embeddings(cfg.embeddings, cfg.classes, cfg.exemplars or None))
    else:
        source = gaussian_clusters(keys(cfg.seed, cfg.data_seed)["source"], cfg.classes, cfg.dim, cfg.noise, cfg.exemplars,
                                   cfg.superclasses, cfg.class_spread)
    return source._replace(class_logits=zipf_logits(cfg.classes, cfg.zipf)) if cfg.zipf > 0 else source


def make_eval_sets(cfg: TrainConfig, source: Exemplars) -> dict:
    """The run's held-out evaluation sets (fixed by its seed), from the first `eval_classes` classes
    and `eval_exemplars` exemplars of `source` (all of them when those are None or larger)."""
    return eval_sets(restrict(source, cfg.eval_classes, cfg.eval_exemplars), keys(cfg.seed, cfg.data_seed)["eval"], cfg.eval_size, cfg.train_dist,
                     cfg.sampling)

