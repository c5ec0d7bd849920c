"""Every figure the README shows, as recipes: the `coop` command that makes it, and what it depends on.

`coop figures` runs the recipes through the job layer (`runio.jobs`; local by default, two at a
time, one per core: the transformer trainings are single-core jobs), each as its own `coop ...`
process, into a cache folder, then copies the figures into `--out`.
A recipe whose outputs exist and whose command is unchanged (recorded in `CACHE/<name>.done`) is
not run again, so a second call only copies; a killed call resumes with the unfinished recipes
(a killed training resumes from its last checkpoint).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from runio import atomic_path
from runio.jobs import Job, JobOptions, run_jobs
from runio.options import ConfigError, out_dir
from transformer.config import grid_run_name
from transformer.rundir import RunDir


@dataclass(frozen=True)
class Recipe:
    """A `coop` command writing into CACHE/<name>/ (`{out}` in `args`), the figures it yields
    (file in its folder -> name in figures/), and the recipes it needs first."""

    name: str
    args: tuple[str, ...]
    figures: dict[str, str] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    output: str = ""  # a file that exists once the recipe is done (default: its first figure)

    def command(self, cache: Path) -> list[str]:
        return [a.replace("{cache}", str(cache)).replace("{out}", str(cache / self.name)) for a in self.args]


def _train(name: str, *options: str, needs: tuple[str, ...] = (), figures: dict[str, str] | None = None) -> Recipe:
    return Recipe(name, ("transformer", "train", "--out", "{out}", "--quiet", *options), figures or {},
                  needs=needs, output="summary.json")


RECIPES: tuple[Recipe, ...] = (  # the long trainings first: two workers, longest jobs first
    _train("ciwl_only", "--train-dist", "ciwl_only"),
    _train("tf", figures={"curves.png": "transformer_curves.png"}),
    _train("match_query", "--train-dist", "match_query"),
    _train("icl_only", "--train-dist", "icl_only"),
    _train("icl_only_l2_ciwl", "--train-dist", "icl_only", "--init-layer", "2={cache}/ciwl_only@75000", "--freeze-layer", "2",
           needs=("ciwl_only",)),
    _train("icl_only_l2_bursty", "--train-dist", "icl_only", "--init-layer", "2={cache}/tf@9000", "--freeze-layer", "2",
           needs=("tf",)),
    _train("icl_only_embed_ciwl", "--train-dist", "icl_only", "--init-layer", "embed={cache}/ciwl_only@75000",
           needs=("ciwl_only",)),
    Recipe("paper", ("toy", "simulate", "--out", "{out}"), {"trajectory.png": "toy_trajectory.png"}),
    Recipe("clamp_half", ("toy", "simulate", "--clamp", "b:10,c:10", "--out", "{out}"), output="summary.json"),
    Recipe("clamp_whole", ("toy", "simulate", "--clamp", "b,c", "--out", "{out}"), output="summary.json"),
    Recipe("partial_clamp", ("toy", "curves", "{cache}/paper", "{cache}/clamp_half", "{cache}/clamp_whole", "--labels",
                             "no clamp,b:10 c:10 (half of b and c),b c (whole)", "--title",
                             "Paper draw: clamping half of the shared layer", "--out", "{out}/curves.png"),
           {"curves.png": "toy_partial_clamp.png"}, needs=("paper", "clamp_half", "clamp_whole")),
    Recipe("phase_alpha_mu1", ("toy", "sweep", "--alpha", "0:1:256", "--mu1", "0:1:256", "--mu2", "0", "--out", "{out}"),
           {"phase_diagram.png": "phase_alpha_mu1.png"}),
    Recipe("phase_alpha_mu2", ("toy", "sweep", "--alpha", "0:1:256", "--mu1", "0.1", "--mu2", "0:0.04:256", "--out", "{out}"),
           {"phase_diagram.png": "phase_alpha_mu2.png"}),
    Recipe("phase_draws", ("toy", "sweep", "--alpha", "0:0.5:64", "--mu1", "0:0.5:64", "--mu2", "0", "--draws", "16",
                           "--out", "{out}"), {"outcome_fractions.png": "phase_draw_fractions.png"}),
    Recipe("portrait", ("toy", "portrait", "--alpha", "0,0.1,0.3", "--mu1", "0.1", "--mu2", "0,0.05", "--out", "{out}"),
           {"portrait.png": "portraits.png"}),
    Recipe("analysis", ("transformer", "analyze", "{cache}/tf", "--out", "{out}"),
           {"progress.png": "progress_measures.png", "ablation.png": "ablation.png"}, needs=("tf",)),
    Recipe("graft_layer1", ("transformer", "graft", "{cache}/tf", "--layer", "1", "--out", "{out}"),
           {"graft.png": "graft_layer1.png"}, needs=("tf",)),
    Recipe("graft_layer2", ("transformer", "graft", "{cache}/tf", "--layer", "2", "--out", "{out}"),
           {"graft.png": "graft_layer2.png"}, needs=("tf",)),
    Recipe("compare", ("compare", "{cache}/tf", "--out", "{out}"),
           {"overlay.png": "fit_overlay.png", "phase.png": "fit_phase.png"}, needs=("tf",)),
    Recipe("match_query_curves", ("transformer", "curves", "{cache}/tf", "{cache}/match_query", "--labels", "bursty,match query",
                                  "--out", "{out}/curves.png"), {"curves.png": "match_query.png"}, needs=("tf", "match_query")),
    Recipe("cooperation", ("transformer", "curves", "{cache}/icl_only", "{cache}/icl_only_l2_ciwl", "{cache}/icl_only_l2_bursty",
                           "{cache}/icl_only_embed_ciwl", "--labels",
                           "ICL-only from scratch,+ Layer 2 of CIWL-only (2.4M) frozen,+ Layer 2 of bursty pre-ICL (0.29M) frozen,"
                           "+ embeddings of CIWL-only (2.4M)", "--out", "{out}/curves.png"),
           {"curves.png": "cooperation.png"}, needs=("icl_only", "icl_only_l2_ciwl", "icl_only_l2_bursty", "icl_only_embed_ciwl")),
)


# The paper's own model on Gaussian clusters (`--preset faithful-gaussian`, seed 0): its run, the paper's interventions at the cut
# after block 0, and the fit. The donors: the CIWL-only run's middle (0.77M of 1.6M sequences, step
# 24,000; checkpoints every 2,000 steps; CIWL 0.62) and later (1.28M, CIWL 0.88), and the bursty
# run's end (6.4M, step 200,000).
_F = ("--preset", "faithful-gaussian")
_KEPT = Path("studies") / "faithful_search"  # relative to the repository, where coop figures runs (its --out is figures/)
# The committed index of the kept runs that the recipes and the studies read (runs kept by
# studies/faithful_search.py in _KEPT/<name>/; a test checks the index against that folder).
# The faithful preset's seeds, each seed's longest run (seeds 0, 2, 5, 6
# continued to 25.6M sequences in wave 10, seed 4 to 12.8M in wave 8; seeds 1, 3 stopped early: CIWL
# first); the seed atlas below and studies/faithful_fits.py read these (fitted with a toy step budget
# of 80,000: see there)
FAITHFUL_SEED_RUNS = ("K12800_E5_n0.6_s0_S25600000", "K12800_E5_n0.6_s1", "K12800_E5_n0.6_s2_S25600000", "K12800_E5_n0.6_s3",
                      "K12800_E5_n0.6_s4_S12800000", "K12800_E5_n0.6_s5_S25600000", "K12800_E5_n0.6_s6_S25600000")
# The faithful preset's noise family (seed 0, K 12,800): each noise's kept runs by length, shortest
# first (wave 11 to 12.8M sequences or until settled; wave 12 continued noise 0.3-0.55 to 25.6M,
# wave 13 noise 0.55 to 32M, wave 10 noise 0.6). studies/faithful_fits.py predicts the longer ones
# from 12.8M; the noise atlas fits each noise's longest.
_NOISE_SEQUENCES_KEPT = {0.3: (12_800_000, 25_600_000), 0.4: (12_800_000, 25_600_000), 0.45: (12_800_000, 25_600_000),
                         0.5: (12_800_000, 25_600_000), 0.55: (12_800_000, 25_600_000, 32_000_000),
                         0.6: (12_800_000, 25_600_000), 0.65: (12_800_000,), 0.7: (12_800_000,), 0.75: (12_800_000,),
                         0.8: (12_800_000,), 0.9: (12_800_000,), 1.0: (12_800_000,)}
FAITHFUL_NOISE = tuple(_NOISE_SEQUENCES_KEPT)
FAITHFUL_NOISE_KEPT = {n: tuple(f"K12800_E5_n{n:g}_s0_S{s}" for s in seqs) for n, seqs in _NOISE_SEQUENCES_KEPT.items()}
FAITHFUL_NOISE_RUNS = tuple(kept[-1] for kept in FAITHFUL_NOISE_KEPT.values())
_F_SHORT = (*_F, "--sequences", "1600000")
FAITHFUL_RECIPES: tuple[Recipe, ...] = (
    _train("faithful_tf", *_F, figures={"curves.png": "faithful_curves.png"}),
    _train("faithful_ciwl_only", *_F_SHORT, "--train-dist", "ciwl_only"),
    _train("faithful_icl_only", *_F_SHORT, "--train-dist", "icl_only"),
    _train("faithful_icl_only_ciwl_half", *_F_SHORT, "--train-dist", "icl_only", "--init-layer",
           "second_half={cache}/faithful_ciwl_only@24000", "--freeze-layer", "second_half", needs=("faithful_ciwl_only",)),
    _train("faithful_icl_only_ciwl_half_late", *_F_SHORT, "--train-dist", "icl_only", "--init-layer",
           "second_half={cache}/faithful_ciwl_only@40000", "--freeze-layer", "second_half", needs=("faithful_ciwl_only",)),
    _train("faithful_icl_only_bursty_half", *_F_SHORT, "--train-dist", "icl_only", "--init-layer",
           "second_half={cache}/faithful_tf@200000", "--freeze-layer", "second_half", needs=("faithful_tf",)),
    _train("faithful_end_half", *_F_SHORT, "--init-layer", "second_half={cache}/faithful_tf@200000", "--freeze-layer",
           "second_half", needs=("faithful_tf",)),
    _train("faithful_match_query", *_F, "--sequences", "3200000", "--train-dist", "match_query"),
    Recipe("faithful_analysis", ("transformer", "analyze", "{cache}/faithful_tf", "--out", "{out}"),
           {"progress.png": "faithful_progress.png", "ablation.png": "faithful_ablation.png"}, needs=("faithful_tf",)),
    Recipe("faithful_graft_first_half", ("transformer", "graft", "{cache}/faithful_tf", "--layer", "first_half",
                                         "--checkpoints", "8", "--out", "{out}"),
           {"graft.png": "faithful_graft_first_half.png"}, needs=("faithful_tf",)),
    Recipe("faithful_graft_second_half", ("transformer", "graft", "{cache}/faithful_tf", "--layer", "second_half",
                                          "--checkpoints", "8", "--out", "{out}"),
           {"graft.png": "faithful_graft_second_half.png"}, needs=("faithful_tf",)),
    Recipe("faithful_end_half_curves", ("transformer", "curves", "{cache}/faithful_tf", "{cache}/faithful_end_half", "--labels",
                                        "bursty,bursty with the final second half clamped", "--out", "{out}/curves.png"),
           {"curves.png": "faithful_end_half.png"}, needs=("faithful_tf", "faithful_end_half")),
    Recipe("faithful_cooperation", ("transformer", "curves", "{cache}/faithful_icl_only", "{cache}/faithful_icl_only_ciwl_half",
                                    "{cache}/faithful_icl_only_ciwl_half_late", "{cache}/faithful_icl_only_bursty_half",
                                    "--labels", "ICL-only from scratch,+ second half of CIWL-only (0.77M) clamped,"
                                    "+ second half of CIWL-only (1.28M) clamped,+ second half of bursty end (6.4M) clamped",
                                    "--out", "{out}/curves.png"),
           {"curves.png": "faithful_cooperation.png"},
           needs=("faithful_icl_only", "faithful_icl_only_ciwl_half", "faithful_icl_only_ciwl_half_late",
                  "faithful_icl_only_bursty_half")),
    Recipe("faithful_match_query_curves", ("transformer", "curves", "{cache}/faithful_tf", "{cache}/faithful_match_query",
                                           "--labels", "bursty,match query", "--out", "{out}/curves.png"),
           {"curves.png": "faithful_match_query.png"}, needs=("faithful_tf", "faithful_match_query")),
    Recipe("faithful_compare", ("compare", "{cache}/faithful_tf", "--out", "{out}"),
           {"overlay.png": "faithful_fit_overlay.png", "phase.png": "faithful_fit_phase.png"}, needs=("faithful_tf",)),
    # the atlas of the preset's seeds (FAITHFUL_SEED_RUNS), from the runs kept by studies/faithful_search.py
    Recipe("faithful_seed_atlas", ("compare", *(str(_KEPT / name) for name in FAITHFUL_SEED_RUNS), "--max-steps", "80000",
                                   "--out", "{out}"),
           {"atlas.png": "faithful_seed_atlas.png"}),
    # the noise family (wave 11 of studies/faithful_search.py: its prediction is written there)
    Recipe("faithful_noise_atlas", ("compare", *(str(_KEPT / name) for name in FAITHFUL_NOISE_RUNS), "--max-steps",
                                    "80000", "--out", "{out}"),
           {"atlas.png": "faithful_noise_atlas.png", "atlas.csv": "faithful_noise_atlas.csv",
            "atlas.json": "faithful_noise_atlas.json"}),
)
# The atlas: two one-knob families of `cpu` runs (seed 0), each fitted by the toy with one mapping.
# Said before running them: more match-query sequences (the context exemplar is the query itself)
# make ICL's matching exact, so ICL's irreducible error (the toy's mu1) falls and the runs move
# down into persistent ICL; more within-class noise makes the matching harder, so mu1 rises and
# the runs move up, from persistent through transient towards CIWL only.
ATLAS_MQ = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)
ATLAS_NOISE = (0.5, 0.55, 0.6, 0.7, 0.75, 0.8)


def _grid(name: str, field: str, values: tuple[float, ...]) -> Recipe:
    return Recipe(name, ("transformer", "grid", "--vary", f"{field}=" + ",".join(f"{v:g}" for v in values), "--out", "{out}"),
                  output="grid.csv")


def _grid_runs(name: str, field: str, values: tuple[float, ...]) -> list[str]:
    return [f"{{cache}}/{name}/{grid_run_name({field: float(v)}, 0)}" for v in values]


ATLAS_RECIPES: tuple[Recipe, ...] = (
    _grid("atlas_mq", "match_query_fraction", ATLAS_MQ),
    _grid("atlas_noise", "noise", ATLAS_NOISE),
    Recipe("atlas", ("compare", *_grid_runs("atlas_mq", "match_query_fraction", ATLAS_MQ),
                     *_grid_runs("atlas_noise", "noise", ATLAS_NOISE), "--out", "{out}"),
           {"atlas.png": "atlas.png"}, needs=("atlas_mq", "atlas_noise")),
)
# The paper's model on exemplars with the paper's structure (`--preset faithful`, the characters
# source, seed 0; studies/paper_data): its five evaluator curves beside the official run's, the
# mechanism (Layer 1 per head, Layer-1 ablations, Layer 2 reading Layer 1 through Q, K, V), the
# first half of every checkpoint grafted into every other, and match-query training beside it.
_PD = ("--preset", "faithful")
_PD_KEPT = Path("studies") / "paper_data" / "kept"
PAPER_DATA_SEED_RUNS = ("L6_n0.7_sp1_sh0.5", *(f"L6_n0.7_sp1_sh0.5_s{s}" for s in range(1, 10)))
PAPER_DATA_LR_RUNS = ("L6_n0.7_sp1_sh0.5_lr1e-05_S32000000", "L6_n0.7_sp1_sh0.5_lr2e-05_S9600000",
                      "L6_n0.7_sp1_sh0.5_lr3e-05_S6400000", "L6_n0.7_sp1_sh0.5")
PAPER_DATA_RECIPES: tuple[Recipe, ...] = (
    _train("paper_data_tf", *_PD, figures={"curves.png": "paper_data_curves.png"}),
    Recipe("paper_data_beside", ("transformer", "curves", "reference/official_main_run.csv", "{cache}/paper_data_tf",
                                 "--labels", "official run (Omniglot features; lr 1e-5),--preset faithful (characters; lr 1e-4)",
                                 "--panels", "run", "--evaluators", "train,icl,ciwl,flip,iwl", "--out", "{out}/beside.png"),
           {"beside.png": "paper_data_beside.png"}, needs=("paper_data_tf",)),
    Recipe("paper_data_analysis", ("transformer", "analyze", "{cache}/paper_data_tf", "--out", "{out}"),
           {"progress.png": "paper_data_progress.png", "ablation.png": "paper_data_ablation.png",
            "readout.png": "paper_data_readout.png"}, needs=("paper_data_tf",)),
    Recipe("paper_data_graft_first_half", ("transformer", "graft", "{cache}/paper_data_tf", "--layer", "first_half",
                                           "--checkpoints", "8", "--out", "{out}"),
           {"graft.png": "paper_data_graft_first_half.png"}, needs=("paper_data_tf",)),
    _train("paper_data_match_query", *_PD, "--train-dist", "match_query"),
    Recipe("paper_data_match_query_curves", ("transformer", "curves", "{cache}/paper_data_tf", "{cache}/paper_data_match_query",
                                             "--labels", "bursty,match query", "--out", "{out}/curves.png"),
           {"curves.png": "paper_data_match_query.png"}, needs=("paper_data_tf", "paper_data_match_query")),
    # the learning rate: the official run and the preset's data at lr 1e-5, 2e-5, 3e-5 and 1e-4 (seed 0;
    # kept by studies/paper_data/search.py, waves F, J, H, D), on one axis of lr x sequences
    Recipe("paper_data_lr", ("transformer", "curves", "reference/official_main_run.csv",
                             *(str(_PD_KEPT / name) for name in PAPER_DATA_LR_RUNS),
                             "--labels", "official run (lr 1e-5),characters lr 1e-5,characters lr 2e-5,characters lr 3e-5,"
                             "characters lr 1e-4", "--scale", "0.1,0.1,0.2,0.3,1", "--unit", "sequences x lr / 1e-4", "--out", "{out}/lr.png"),
           {"lr.png": "paper_data_lr.png"}),
    # the toy fitted to the preset's ten seeds to 3.2M sequences (kept by studies/paper_data/search.py, wave E)
    Recipe("paper_data_seed_atlas", ("compare", *(str(_PD_KEPT / name) for name in PAPER_DATA_SEED_RUNS), "--out", "{out}"),
           {"atlas.png": "paper_data_seed_atlas.png", "atlas.csv": "paper_data_seed_atlas.csv"}),
)
ALL_RECIPES = RECIPES + FAITHFUL_RECIPES + PAPER_DATA_RECIPES + ATLAS_RECIPES
GROUPS = {"faithful": FAITHFUL_RECIPES, "paper_data": PAPER_DATA_RECIPES}


def select(only: str | None, recipes: tuple[Recipe, ...] = ALL_RECIPES) -> tuple[Recipe, ...]:
    """The recipes named in `only` (a comma list of recipe names or of GROUPS, e.g. "faithful" for every
    faithful recipe; None: all) with everything they need; ConfigError on `only` for an unknown name."""
    if only is None:
        return recipes
    by_name = {r.name: r for r in recipes}
    wanted: set[str] = set()
    for name in (n.strip() for n in only.split(",")):
        if name in GROUPS:
            wanted |= {r.name for r in GROUPS[name]}
        elif name in by_name:
            wanted.add(name)
        else:
            raise ConfigError("only", f"recipe names (or {' or '.join(GROUPS)}), one of {', '.join(by_name)}; got {name!r}")
    todo = list(wanted)
    while todo:
        for need in by_name[todo.pop()].needs:
            if need not in wanted:
                wanted.add(need)
                todo.append(need)
    return tuple(r for r in recipes if r.name in wanted)


def _stamp(cache: Path, recipe: Recipe) -> Path:
    return cache / f"{recipe.name}.done"


def is_done(cache: Path, recipe: Recipe) -> bool:
    """Finished before with the same command, and its outputs are still there."""
    stamp = _stamp(cache, recipe)
    if not stamp.is_file() or json.loads(stamp.read_text()).get("command") != recipe.command(cache):
        return False
    folder = cache / recipe.name
    return all((folder / f).is_file() for f in [recipe.output or next(iter(recipe.figures))] + list(recipe.figures))


def _run(cache: Path, recipe: Recipe) -> dict:
    """Run one recipe in its own process; returns its record (command, seconds, log)."""
    folder = cache / recipe.name
    args = recipe.command(cache)
    resume = recipe.args[:2] == ("transformer", "train") and RunDir(folder).resumable
    if resume:
        args.append("--resume")
    elif recipe.args[:2] == ("transformer", "train") and folder.exists():
        shutil.rmtree(folder)  # a start that never reached its first checkpoint
    log = cache / f"{recipe.name}.log"
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run([sys.executable, "-c", "import cli; cli.main()", *args], stdout=fh, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"recipe {recipe.name} failed (exit {proc.returncode}); see {log}")
    record = {"command": recipe.command(cache), "seconds": seconds, "resumed": resume}
    with atomic_path(_stamp(cache, recipe)) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return record


def check_folders(out, cache) -> None:
    """ConfigError on `out` or `cache` if either is a file (they are directories, made if missing)."""
    out_dir(out, "out")
    out_dir(cache, "cache")


def make_all(out: Path, cache: Path, jobs: int = 2, progress=None, recipes: tuple[Recipe, ...] = ALL_RECIPES,
             options: JobOptions | None = None) -> dict:
    """Run every recipe of `recipes` not yet done (dependencies first) through the job layer
    (`runio.jobs`: by default local, `jobs` at a time) and copy the figures to `out`.

    `progress(done, total, running)` is called as recipes finish (`running`: their names). Returns {recipe: record}, where a
    cached recipe's record says `cached: true`. A failing recipe raises JobError naming it and its
    log; the recipes already done stay done.
    """
    cache.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    options = options or JobOptions(jobs=jobs)
    records = {r.name: {"cached": True} for r in recipes if is_done(cache, r)}
    by_name = {r.name: r for r in recipes}
    work = [Job(r.name, _run, (cache, r), cache / r.name, (lambda r=r: is_done(cache, r))) for r in recipes]
    results = run_jobs(work, options, cache / "jobs", progress=progress,
                       ready=lambda job, finished: all(n in finished for n in by_name[job.name].needs))
    records.update({name: rec for name, rec in results.items() if name not in records})
    for r in recipes:
        for src, dst in r.figures.items():
            with atomic_path(out / dst) as tmp:
                shutil.copyfile(cache / r.name / src, tmp)
    if progress:
        progress(len(recipes), len(recipes), "")
    return records
