"""`coop`: the command layer. It owns every option, its parsing, its one-line errors and everything
printed; the library takes typed values and raises errors naming its parameters.

Options are declared once, as fields of the library's config dataclasses (`runio.options.option`:
help, allowed values), and generated from them (`runio.options.with_fields`):
`transformer.config.TrainConfig`, `toymodel.commands` (the toy commands' options), `compare.config`
(`coop compare`'s), `runio.jobs.JobOptions`. The library validates them: a bad value raises
`runio.options.ConfigError` naming the parameter, which `main` prints as one line naming the flag
(`cli.errors`) and what is allowed, with exit code 2 and no traceback, before anything is written.

One module per command group: `cli.toy`, `cli.transformer`, `cli.figures`, `cli.compare`,
`cli.explore`; `cli.output` prints lines and progress bars, `cli.jobs` adds the job options.
Compiled programs are kept between runs (JAX's persistent compilation cache, `runio.jaxcache`).

Start-up: the package imports only typer and those light declarations (no jax, sympy or
matplotlib); each command imports what it runs inside its body, so `coop --help` is fast.
"""

from __future__ import annotations

import sys

import typer

from cli import compare, errors, explore, figures, toy, transformer
from runio.jaxcache import use_compilation_cache
from runio.options import ConfigError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Strategy coopetition: the toy model of transient in-context learning and a CPU-scale transformer.",
)
app.add_typer(toy.app, name="toy")
app.add_typer(transformer.app, name="transformer")
app.command("figures")(figures.figures)
app.command("compare")(compare.compare)
app.command("explore")(explore.explore)


def main() -> None:
    """Console-script entry point: one-line errors with exit code 2 for bad input or bad usage."""
    use_compilation_cache()  # before jax starts (runio.jaxcache)
    command = typer.main.get_command(app)
    args = sys.argv[1:]
    try:
        code = command.main(args=args, prog_name="coop", standalone_mode=False)
    except ConfigError as err:
        print(f"coop: error: {errors.message(err, errors.flags_of(errors.invoked(command, args)))}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:  # click's usage errors (typer vendors click; match them by shape)
        if not (hasattr(err, "format_message") and hasattr(err, "exit_code")):
            raise
        if type(err).__name__ == "NoArgsIsHelpError":
            print(err.format_message())
            sys.exit(0)
        message = " ".join(err.format_message().split())
        print(f"coop: error: {message}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)
