"""`coop`: the command-line interface. A thin typer layer: parse, validate, call the library, print.

Every bad parameter ends the process with one line on stderr naming the parameter and what is
allowed, exit code 2, and no traceback (raise `BadInput` anywhere below a command).
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Strategy coopetition: the toy model of transient in-context learning and a CPU-scale transformer.",
)
toy_app = typer.Typer(no_args_is_help=True, help="The toy model: four vectors, two mechanisms, one competition.")
transformer_app = typer.Typer(no_args_is_help=True, help="The 2-layer attention-only transformer on bursty sequences.")
app.add_typer(toy_app, name="toy")
app.add_typer(transformer_app, name="transformer")


class BadInput(Exception):
    """A user-supplied parameter is invalid: `param` names it, `allowed` says what is allowed."""

    def __init__(self, param: str, allowed: str):
        super().__init__(f"{param}: {allowed}")
        self.param = param
        self.allowed = allowed


def main() -> None:
    """Console-script entry point: one-line errors with exit code 2 for bad input or bad usage."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=sys.argv[1:], prog_name="coop", standalone_mode=False)
    except BadInput as err:
        print(f"coop: error: {err}", file=sys.stderr)
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


# ---------------------------------------------------------------------------------------------
# coop toy ...
# ---------------------------------------------------------------------------------------------

# (toy commands below)

# ---------------------------------------------------------------------------------------------
# coop transformer ...
# ---------------------------------------------------------------------------------------------

# (transformer commands below)


if __name__ == "__main__":
    main()
