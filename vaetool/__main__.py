"""`python -m vaetool` = the `vaetool` command."""

from vaetool.cli import run

run()
