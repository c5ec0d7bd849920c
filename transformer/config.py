"""A run's configuration: every knob (`TrainConfig`, each field declared once with its option, help
and allowed values: `runio.options`), its validation, the parts of the model that clamping and
grafting address, and what the config determines (PRNG streams, exemplar source, evaluation sets).

`check_config` returns (field, what is allowed) pairs, `validate_config` raises the first as a
`ConfigError` naming the field. It checks values only; donor runs named by `init_layer`
are checked on disk by `checkpoints.donor_problems`. This module imports jax, numpy, the data, the
characters table and the model only inside the functions that need them, so that the config (and
the CLI generated from it) loads in milliseconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from runio.options import ConfigError, option, problems
from transformer.choices import CONTEXT_EXEMPLAR, ICL_LABELS, ICL_ONLY_LABELS, POS_INITS, SOURCES, TRAIN_DISTS

_POSITIVE = dict(low=1, allowed="must be a positive integer")
_POSITIVE_FLOAT = dict(low=0, low_open=True)  # "must be a finite number > 0"


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a run (defaults: the `cpu` preset). Sizes in sequences; `exemplars=0` draws a
    fresh exemplar every time. Each field is `coop transformer train`'s option of the same name."""

    classes: int = option(2048, "Number of classes K (= labels).", low=4,
                          allowed="must be an integer >= 4 (the ICL evaluator needs two classes and two other labels)")
    exemplars: int = option(0, "Exemplars per class; 0 draws a fresh one every time.", low=0,
                            allowed="must be >= 0 (0 draws a fresh exemplar every time)")
    source: str = option("clusters", "Exemplars: clusters (Gaussian, in --dim dimensions) or characters (characters x "
                         "variants x drawings along --latent-dim directions, as --dim non-negative ReLU features).",
                         choices=SOURCES)
    noise: float = option(0.65, "Within-class noise eps (clusters: in --dim; characters: of a drawing, in the latent).",
                          low=0)
    dim: int = option(64, "Exemplar dimension D (characters: the feature dimension, the paper's 512).", **_POSITIVE)
    latent_dim: int = option(8, "Characters: the directions that drawings and characters vary along.", **_POSITIVE)
    variants: int = option(8, "Characters: sibling classes per character (must divide --classes; paper: 8).",
                           **_POSITIVE)
    variant_spread: float = option(0.5, "Characters: spread of a character's variants (sibling cosine ~1/(1+s^2)).",
                                   low=0)
    feature_shift: float = option(0.5, "Characters: shift before the ReLU, the features' shared component.", low=-3,
                                  high=3, allowed="must be in [-3, 3] (beyond it the ReLU is ~all zero or ~all linear)")
    zipf: float = option(0.0, "Training classes drawn with p_k ~ 1/(k+1)^ZIPF (0: uniform; evaluators stay uniform).",
                         low=0, allowed="must be a finite number >= 0 (0: uniform classes)")
    superclasses: int = option(0, "Group the Gaussian classes into this many superclasses (0: independent means).",
                               low=0, allowed="must be >= 0 (0: independent class means)")
    class_spread: float = option(1.0, "Spread of class means around their superclass centre (> 0).", **_POSITIVE_FLOAT)
    embeddings: str | None = option(None, "Array (classes, exemplars, dim) in .npz or .h5/.hdf5.")
    train_dist: str = option("bursty", "bursty, icl_only, ciwl_only or match_query.", choices=TRAIN_DISTS)
    context_exemplar: str = option("distinct", "The query class's context exemplar: replacement (official: may be "
                                   "the query itself) or distinct.", choices=CONTEXT_EXEMPLAR)
    icl_labels: str = option("other", "ICL evaluator labels: 01 (official) or other (owned by neither class).",
                             choices=ICL_LABELS)
    icl_only_labels: str = option("eval", "ICL-only training's labels: random (official --fs_relabel K: a random "
                                  "pair of the K labels per sequence) or eval (the ICL evaluator's, --icl-labels).",
                                  choices=ICL_ONLY_LABELS)
    match_query_fraction: float = option(0.0, "Bursty training with this fraction of match-query sequences (0..1).",
                                         low=0, high=1, allowed="must be in [0, 1] (0: bursty, 1: every sequence match-query)")
    pos_init: str = option("normal", "Positional init: uniform (official, ±1/sqrt(32)) or normal (std 0.02).",
                           choices=POS_INITS)
    d_model: int = option(64, "Width of the residual stream.", **_POSITIVE)
    heads: int = option(8, "Attention heads per layer (must divide --d-model).", **_POSITIVE)
    layers: int = option(2, "Attention layers.", **_POSITIVE)
    tie_labels: bool = option(True, "One table embeds and reads out labels (cpu) or two (paper).",
                              flag="--tie-labels/--no-tie-labels")
    label_lr_scale: float = option(0.1, "Scale of the label table's Adam step (paper: 1).", **_POSITIVE_FLOAT)
    label_init_std: float = option(1.0, "Init std of the label table (paper: 0.02).", **_POSITIVE_FLOAT)
    lr: float = option(1e-3, "Adam learning rate.", **_POSITIVE_FLOAT)
    weight_decay: float = option(0.03, "AdamW decoupled weight decay (paper: 0).", low=0)
    label_weight_decay: float | None = option(1.0, "The label table's decay (default: --weight-decay).", low=0)
    batch: int = option(32, "Sequences per step.", **_POSITIVE)
    sequences: int = option(4_800_000, "Training sequences in total (a multiple of --eval-every).", **_POSITIVE)
    eval_every: int = option(48_000, "Evaluate and checkpoint every this many sequences.", **_POSITIVE)
    eval_size: int = option(2000, "Sequences in each held-out evaluation set.", **_POSITIVE)
    eval_classes: int | None = option(None, "Evaluators use the first this many classes (paper: 1600).", low=4,
                                      allowed="must be an integer >= 4 (or left out: all)")
    eval_exemplars: int | None = option(None, "... and the first this many exemplars per class (paper: 5).", low=1,
                                        allowed="must be an integer >= 1 (or left out: all)")
    stop_when_icl_below: float = option(0.6, "End once ICL peaked >= 0.7 and fell below this (0: never).", low=0,
                                        high=1, high_open=True, allowed="must be in [0, 1) (0 = never stop early)")
    seed: int = option(0, "Seed of clusters, init, data and evaluation sets.")
    data_seed: int | None = option(None, "Seed of clusters, data and evaluation sets only (default: --seed; the init "
                                   "stays --seed's).", low=0, allowed="must be an integer >= 0 (or left out: the seed)")
    init_layer: str | None = option(None, "L=RUN_DIR@STEP[,...]: start L (1, 2, embed, first_half or second_half) "
                                    "from that run's checkpoint.")
    freeze_layer: str | None = option(None, "Parts that get no updates, e.g. 2, second_half or 2,embed (clamped training).")

    def model_config(self):
        from transformer.model import ModelConfig

        return ModelConfig(
            classes=self.classes, dim=self.dim, d_model=self.d_model, heads=self.heads,
            layers=self.layers, tie_labels=self.tie_labels, label_init_std=self.label_init_std, pos_init=self.pos_init,
        )

    @property
    def sampling(self):
        from transformer.data import Sampling

        return Sampling(context_exemplar=self.context_exemplar, icl_labels=self.icl_labels,
                        match_query_fraction=self.match_query_fraction, icl_only_labels=self.icl_only_labels)

    @property
    def steps_per_eval(self) -> int:
        return self.eval_every // self.batch

    @property
    def total_steps(self) -> int:
        return self.sequences // self.batch


def check_config(cfg: TrainConfig) -> list[tuple[str, str]]:
    """Problems with `cfg` as (field, what is allowed) pairs; empty if it is valid: each field's
    declared range or choices (`runio.options.problems`), then what relates fields."""
    bad = problems(cfg)
    if cfg.match_query_fraction > 0 and cfg.train_dist != "bursty":
        bad.append(("match_query_fraction", "mixes match-query into bursty training: needs train_dist bursty"))
    if cfg.heads > 0 and cfg.d_model % cfg.heads:
        bad.append(("heads", "must divide d_model"))
    if cfg.batch > 0 and cfg.eval_every > 0 and cfg.eval_every % cfg.batch:
        bad.append(("eval_every", f"must be a multiple of the batch size ({cfg.batch})"))
    if cfg.eval_every > 0 and cfg.sequences > 0 and cfg.sequences % cfg.eval_every:
        bad.append(("sequences", f"must be a multiple of eval_every ({cfg.eval_every})"))
    if cfg.source == "characters":
        if cfg.embeddings is not None:
            bad.append(("source", "must be clusters with `embeddings` (the file is the source)"))
        from transformer.characters import problems as character_problems

        bad += character_problems(character_spec(cfg))
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


def validate_config(cfg: TrainConfig, extra: list[tuple[str, str]] = ()) -> TrainConfig:
    """`cfg` if valid, else ConfigError naming the field of the first problem (`check_config`, then `extra`)."""
    for name, allowed in [*check_config(cfg), *extra]:
        raise ConfigError(name, allowed)
    return cfg



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
    import jax

    root = jax.random.PRNGKey(seed)
    data_root = root if data_seed is None else jax.random.PRNGKey(data_seed)
    return {name: jax.random.fold_in(root if name == "init" else data_root, i)
            for i, name in enumerate(("source", "init", "data", "eval"))}


def resolve_embeddings(cfg: TrainConfig, classes: int | None = None, exemplars: int | None = None) -> TrainConfig:
    """With an embeddings file, take classes/exemplars/dim from it (the first `classes` classes and
    `exemplars` exemplars when given, else all). Raises ValueError if the file is missing or malformed."""
    from transformer.data import load_embeddings

    if cfg.embeddings is None:
        return cfg
    arr = load_embeddings(cfg.embeddings, classes, exemplars)
    return dataclasses.replace(cfg, classes=arr.shape[0], exemplars=arr.shape[1], dim=arr.shape[2], noise=0.0)


def make_source(cfg: TrainConfig) -> Exemplars:
    """The training exemplar source (with its Zipf class law, if any; `make_eval_sets` drops it)."""
    from transformer.data import from_table, gaussian_clusters, load_embeddings, zipf_logits

    if cfg.embeddings is not None:
        source = from_table(load_embeddings(cfg.embeddings, cfg.classes, cfg.exemplars or None))
    elif cfg.source == "characters":
        from transformer.characters import table

        source = from_table(table(character_spec(cfg)))
    else:
        source = gaussian_clusters(keys(cfg.seed, cfg.data_seed)["source"], cfg.classes, cfg.dim, cfg.noise, cfg.exemplars,
                                   cfg.superclasses, cfg.class_spread)
    return source._replace(class_logits=zipf_logits(cfg.classes, cfg.zipf)) if cfg.zipf > 0 else source


def character_spec(cfg: TrainConfig):
    """The characters table a config trains on (seeded by `data_seed`, else `seed`)."""
    from transformer.characters import CharacterSpec

    return CharacterSpec(classes=cfg.classes, variants=cfg.variants, exemplars=cfg.exemplars, latent_dim=cfg.latent_dim,
                         noise=cfg.noise, variant_spread=cfg.variant_spread, dim=cfg.dim, shift=cfg.feature_shift,
                         seed=cfg.seed if cfg.data_seed is None else cfg.data_seed)


def make_eval_sets(cfg: TrainConfig, source: Exemplars) -> dict:
    """The run's held-out evaluation sets (fixed by its seed), from the first `eval_classes` classes
    and `eval_exemplars` exemplars of `source` (all of them when those are None or larger)."""
    from transformer.data import eval_sets, restrict

    return eval_sets(restrict(source, cfg.eval_classes, cfg.eval_exemplars), keys(cfg.seed, cfg.data_seed)["eval"], cfg.eval_size, cfg.train_dist,
                     cfg.sampling)


def grid_run_name(point: dict, seed: int) -> str:
    """A grid run's folder name: the varied fields and values, then the seed (`noise0.5-seed0`)."""
    name = "-".join(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in point.items()) or "base"
    return f"{name}-seed{seed}"
