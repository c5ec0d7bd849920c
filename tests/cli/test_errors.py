"""The library's errors name parameters; `coop` prints the flag (`cli.errors`): a field's declared
flag (a `flag=` override too), the command's own option, the parameters a message cites."""

from __future__ import annotations

import dataclasses

import pytest
import typer

import cli
from cli import errors
from runio.options import ConfigError, flag_name, spec
from transformer.config import TrainConfig


def _flags(*path):
    return errors.flags_of(errors.invoked(typer.main.get_command(cli.app), list(path)))


def test_a_plain_field_prints_its_flag(tmp_path, coop_inprocess):
    from toymodel.commands import Simulate

    with pytest.raises(ConfigError) as exc:  # the library names the field
        Simulate(init_file=str(tmp_path / "missing.npz")).prepare()
    assert exc.value.parameter == "init_file"
    code, out, err = coop_inprocess("toy", "simulate", "--init-file", tmp_path / "missing.npz", "--out", tmp_path / "run")
    assert code == 2 and out == "" and err == f"coop: error: --init-file: {exc.value.allowed}\n"
    assert not (tmp_path / "run").exists()


def test_a_field_with_a_flag_override_prints_its_flag(tmp_path, coop_inprocess, monkeypatch):
    """`tie_labels` is declared with flag="--tie-labels/--no-tie-labels". A bool has no value out of
    range, so here the library's check refuses --no-tie-labels (and cites the field in its message)."""
    import transformer.config as config

    field = next(f for f in dataclasses.fields(TrainConfig) if f.name == "tie_labels")
    assert spec(field)["flag"] == "--tie-labels/--no-tie-labels" and flag_name(field) == "--tie-labels"
    checked = config.check_config
    monkeypatch.setattr(config, "check_config", lambda cfg: checked(cfg) + (
        [] if cfg.tie_labels else [("tie_labels", "refused in this test (`tie_labels` with `heads`)")]))
    with pytest.raises(ConfigError) as exc:
        config.validate_config(dataclasses.replace(TrainConfig(), tie_labels=False))
    assert str(exc.value) == "tie_labels: refused in this test (`tie_labels` with `heads`)"
    code, _, err = coop_inprocess("transformer", "train", "--out", tmp_path / "run", "--no-tie-labels")
    assert code == 2 and err == "coop: error: --tie-labels: refused in this test (--tie-labels with --heads)\n"
    assert not (tmp_path / "run").exists()


def test_the_commands_own_option_and_cited_parameters(tmp_path, coop_inprocess):
    # transformer curves: the parameter `threshold` is the option --icl-threshold
    code, _, err = coop_inprocess("transformer", "curves", tmp_path, "--out", tmp_path / "c.png", "--icl-threshold", "2")
    assert code == 2 and err == "coop: error: --icl-threshold: must be in (0.5, 1), got 2.0\n"
    # messages citing other parameters: a sweep's shards, a grid's train field
    code, _, err = coop_inprocess("toy", "sweep", "--shards", "2", "--shard", "1/2", "--out", tmp_path / "s")
    assert code == 2 and err == "coop: error: --shards: runs every shard itself: leave out --shard\n"
    code, _, err = coop_inprocess("transformer", "grid", "--vary", "heads=3", "--out", tmp_path / "g")
    assert code == 2 and err == "coop: error: --vary: heads=3: --heads must divide d_model\n"
    assert not (tmp_path / "s").exists() and not (tmp_path / "g").exists()


def test_the_mapping():
    sweep = _flags("toy", "sweep", "--out", "x")
    assert sweep["shards"] == "--shards" and sweep["executor"] == "--executor" and sweep["tie_labels"] == "--tie-labels"
    assert _flags("transformer", "curves")["threshold"] == "--icl-threshold"
    assert "min_steps" not in sweep  # FitConfig's library knob: no flag
    shown = errors.message(ConfigError("alpha/mu1/mu2", "at most 36 panels"), sweep)
    assert shown == "--alpha/--mu1/--mu2: at most 36 panels"
    shown = errors.message(ConfigError("RUN_DIR", "not a `coop compare` fit; see `min_steps` and `cpus_per_job`"), sweep)
    assert shown == "RUN_DIR: not a `coop compare` fit; see `min_steps` and --cpus-per-job"
