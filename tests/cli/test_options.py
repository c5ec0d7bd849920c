"""Options declared once (`runio.options`): every config field is an option with help, every bad
value of each kind gives one line naming the option and exit code 2, and the CLI starts light."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import typer

import cli
from compare.config import Compare, FitConfig
from runio.jobs import JobOptions
from runio.options import ConfigError, flag_name, spec, validate
from toymodel import commands as toy
from transformer.config import TrainConfig

from conftest import ROOT


def _command(*path):
    cmd = typer.main.get_command(cli.app)
    for name in path:
        cmd = cmd.commands[name]
    return cmd


COMMANDS = [(TrainConfig, ("transformer", "train")), (toy.Simulate, ("toy", "simulate")), (toy.Sweep, ("toy", "sweep")),
            (toy.FixedPoints, ("toy", "fixed-points")), (toy.Portrait, ("toy", "portrait")),
            (JobOptions, ("transformer", "train")), (JobOptions, ("toy", "sweep")), (Compare, ("compare",)),
            (FitConfig, ("compare",))]
# fields that are the library's knobs, not options (a new field of these must be one or the other)
LIBRARY_ONLY = {FitConfig: {"fixed", "dims", "lr", "min_steps", "screen_every", "sample_seed", "max_nfev"}}


@pytest.mark.parametrize("cls,path", COMMANDS, ids=[f"{c.__name__}-{'_'.join(p)}" for c, p in COMMANDS])
def test_every_field_is_an_option_with_help(cls, path):
    params = {p.name: p for p in _command(*path).params}
    for f in dataclasses.fields(cls):
        if f.name in LIBRARY_ONLY.get(cls, ()):
            assert spec(f) is None and f.name not in params, f"{cls.__name__}.{f.name} is not an option"
            continue
        assert spec(f) is not None and spec(f)["help"], f"{cls.__name__}.{f.name} has no help"
        assert f.name in params, f"{cls.__name__}.{f.name} has no option in coop {' '.join(path)}"
        assert flag_name(f) in params[f.name].opts and params[f.name].help == spec(f)["help"]


def _bad_values(cls):
    """(field, bad text) for every field with a declared range or choices, and a non-number for numbers."""
    out = []
    for f in dataclasses.fields(cls):
        meta = spec(f)
        if meta is None:  # not an option
            continue
        kind = f.type.replace(" | None", "")
        if meta["choices"] is not None:
            out.append((f.name, "no-such-choice"))
        if meta["low"] is not None:
            low = meta["low"]
            out.append((f.name, str(low if meta["low_open"] else (low - 1 if kind == "int" else low - 0.5))))
        if meta["high"] is not None:
            out.append((f.name, str(meta["high"] if meta["high_open"] else meta["high"] + 1)))
        if kind in ("int", "float"):
            out.append((f.name, "x"))
        if kind == "float" and meta["low"] is not None:
            out.append((f.name, "nan"))
    return out


TRAIN_BAD = _bad_values(TrainConfig)
SIMULATE_BAD = _bad_values(toy.Simulate)
# coop compare: every declared range and choice, the step budget's multiple, and --fix's forms
COMPARE_BAD = [*_bad_values(FitConfig), *_bad_values(Compare), ("max_steps", "1005"),
               ("fix", "beta=1"), ("fix", "mu2"), ("fix", "mu2=x"), ("fix", "mu2=nan"), ("fix", "mu2=-1"),
               ("fix", "tau=0"), ("fix", "B1=inf"), ("fix", "mu2=0,mu2=1"),
               ("icl", "no_such_column"), ("ciwl", "no_such_column"), ("sequences", "no_such_column")]


def test_every_bounded_train_field_is_exercised():
    bounded = {f.name for f in dataclasses.fields(TrainConfig) if spec(f)["low"] is not None or spec(f)["choices"]}
    assert bounded == {name for name, _ in TRAIN_BAD} - {"seed"} and len(bounded) >= 20


@pytest.mark.parametrize("field,text", TRAIN_BAD, ids=[f"{n}={t}" for n, t in TRAIN_BAD])
def test_bad_train_value_one_line_exit_2(tmp_path, coop_inprocess, field, text):
    option = flag_name(next(f for f in dataclasses.fields(TrainConfig) if f.name == field))
    code, _, err = coop_inprocess("transformer", "train", "--out", tmp_path / "run", option, text)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and option in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("field,text", SIMULATE_BAD, ids=[f"{n}={t}" for n, t in SIMULATE_BAD])
def test_bad_simulate_value_one_line_exit_2(tmp_path, coop_inprocess, field, text):
    option = flag_name(next(f for f in dataclasses.fields(toy.Simulate) if f.name == field))
    code, _, err = coop_inprocess("toy", "simulate", "--out", tmp_path / "run", option, text)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and option in lines[0], err
    assert not (tmp_path / "run").exists()


def test_every_compare_option_is_exercised():
    exercised = {name for name, _ in COMPARE_BAD}
    assert exercised == {f.name for cls in (FitConfig, Compare) for f in dataclasses.fields(cls) if spec(f)}


@pytest.fixture
def curves_csv(tmp_path):
    """A valid CSV of curves (20 rows): any failure below comes from the option."""
    path = tmp_path / "curves.csv"
    rows = [f"{1000 * i},{1 + 1 / i:.6f},{2 / i:.6f}" for i in range(1, 21)]
    path.write_text("\n".join(["sequences,icl_loss,ciwl_loss", *rows]) + "\n")
    return path


@pytest.mark.parametrize("field,text", COMPARE_BAD, ids=[f"{n}={t}" for n, t in COMPARE_BAD])
def test_bad_compare_value_one_line_exit_2(tmp_path, curves_csv, coop_inprocess, field, text):
    cls = FitConfig if field in {f.name for f in dataclasses.fields(FitConfig)} else Compare
    option = flag_name(next(f for f in dataclasses.fields(cls) if f.name == field))
    code, _, err = coop_inprocess("compare", curves_csv, "--out", tmp_path / "out", option, text)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and option in lines[0] and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option,value", [("--fit-until", "5000"), ("--from-sequences", "0")])
def test_compare_one_run_options_refused_with_several(tmp_path, curves_csv, coop_inprocess, option, value):
    code, _, err = coop_inprocess("compare", curves_csv, curves_csv, "--out", tmp_path / "out", option, value)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and option in lines[0], err
    assert not (tmp_path / "out").exists()


def test_compare_fix_is_repeatable():
    params = {p.name: p for p in _command("compare").params}
    assert params["fix"].multiple and params["fix"].opts == ["--fix"]
    opts = Compare(fix=["mu2=0,tau=150", "B2=0.02"])
    assert opts.fix == ("mu2=0,tau=150", "B2=0.02") and Compare(fix=None).fix == ()
    assert opts.fit_config(starts=16).fixed == {"mu2": 0.0, "tau": 150.0, "B2": 0.02}


def test_validation_lives_in_the_library():
    with pytest.raises(ConfigError) as exc:
        validate(dataclasses.replace(TrainConfig(), lr=-1.0))
    assert exc.value.parameter == "lr" and "> 0" in exc.value.allowed and str(exc.value).startswith("lr: ")
    from transformer.config import validate_config

    with pytest.raises(ConfigError, match="^heads: must divide d_model"):
        validate_config(dataclasses.replace(TrainConfig(), heads=3))
    assert validate_config(TrainConfig()) == TrainConfig()
    for make, field in [(lambda: FitConfig(starts=0), "starts"), (lambda: FitConfig(max_steps=40005), "max_steps"),
                        (lambda: FitConfig(fixed={"tau": 0.0}), "fix"), (lambda: Compare(grid=201), "grid"),
                        (lambda: Compare(losses="log"), "losses"), (lambda: Compare(fix=("mu2=-1",)).fit_config(), "fix")]:
        with pytest.raises(ConfigError) as exc:
            make()
        assert exc.value.parameter == field


HELP_EVERYWHERE = """
import contextlib, io, sys
import cli, compare, compare.config, toymodel.commands, transformer, transformer.config, transformer.presets
import typer

root = typer.main.get_command(cli.app)


def paths(command, path):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from paths(sub, path + [name])


shown = []
for path in paths(root, []):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        root.main(args=path + ["--help"], prog_name="coop", standalone_mode=False)
    shown += [" ".join(path)] if " ".join(["Usage: coop", *path, "["]) in out.getvalue() else []
print(";".join(shown))
heavy = ("jax", "sympy", "diffrax", "matplotlib", "scipy", "numpy", "h5py", "submitit")
print(",".join(m for m in heavy if m in sys.modules))
"""


def test_the_cli_and_the_configs_load_without_heavy_modules():
    """`import cli`, the light declarations it reads and the --help of every command (what `coop
    --help` and `coop ... --help` run) load no heavy module."""
    res = subprocess.run([sys.executable, "-c", HELP_EVERYWHERE], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    shown, heavy = res.stdout.split("\n")[:2]
    assert {"", "toy simulate", "toy sweep", "transformer train", "compare", "explore"} <= set(shown.split(";")), shown
    assert heavy == "", heavy
    code = "import sys, transformer.train; print(','.join(m for m in ('sympy', 'diffrax') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "", res.stdout + res.stderr  # nothing of the toy model


def test_coop_keeps_compiled_programs_unless_told_otherwise(tmp_path):
    """`coop` points JAX's persistent compilation cache at its folder when none is set, keeps a
    folder the user set (an empty one: off), and a run of a command fills it, also with the programs
    that compile in under a second (the round kernel of a tiny sweep)."""
    code = "import os, cli; from runio import jaxcache; jaxcache.use_compilation_cache(); print(os.environ[jaxcache.ENV])"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
    env |= {"XDG_CACHE_HOME": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert res.stdout.strip() == str(tmp_path / "coop" / "jax"), res.stderr
    for given in ("", str(tmp_path / "mine")):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                             env=env | {"JAX_COMPILATION_CACHE_DIR": given}, timeout=60)
        assert res.stdout.rstrip("\n") == given, res.stderr
    cache = tmp_path / "filled"
    res = subprocess.run([sys.executable, "-c", "import cli; cli.main()", "toy", "sweep", "--alpha", "0,0.5", "--mu1", "0.1",
                          "--steps", "2000", "--out", str(tmp_path / "sw")], capture_output=True, text=True, cwd=ROOT,
                         env=env | {"JAX_COMPILATION_CACHE_DIR": str(cache)}, timeout=300)
    assert res.returncode == 0, res.stderr
    assert any(p.name.startswith("jit_advance_b") for p in cache.iterdir())
