"""`python -m cli`: the same as `coop`."""

from cli import main

main()
