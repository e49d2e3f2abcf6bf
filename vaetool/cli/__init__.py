"""The `vaetool` command line: a thin typer shell over the importable core.

Nothing here imports torch at module level, so `vaetool --help` starts fast; each command
imports what it needs when it runs.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import typer

from vaetool._version import __version__
from vaetool.cli import components as _components
from vaetool.cli import foreign as _foreign
from vaetool.cli import info as _info
from vaetool.cli import metrics as _metrics
from vaetool.cli import mi as _mi
from vaetool.cli import prune as _prune
from vaetool.cli import report as _report
from vaetool.cli import study as _study
from vaetool.cli import train as _train
from vaetool.cli import traverse as _traverse
from vaetool.cli._fields import command_flags, shown

app = typer.Typer(
    name="vaetool",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: no boxes, no <bool> placeholders on flags
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("train")(_train.train)
app.command("quickstart")(_train.quickstart)
app.command("info")(_info.info)
app.add_typer(_mi.mi_app, name="mi")
app.command("prune")(_prune.prune)
app.command("traverse")(_traverse.traverse)
app.command("metrics")(_metrics.metrics)
app.command("report")(_report.report)
app.command("study")(_study.study)
app.command("import")(_foreign.import_model)
app.command("encode")(_foreign.encode)
app.command("components")(_components.components)


def _version(value: bool) -> None:
    if value:
        print(f"vaetool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """What has a trained VAE learned? Rank latent factors by information, prune, traverse."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app. Our errors become one line on stderr and exit code 1; usage
    errors exit 2 with click's message; Ctrl-C exits 130 with what was kept (training) or
    "interrupted"."""
    import contextlib
    import os

    ranks, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if ranks > 1 and rank > 0:  # torchrun: rank 0 prints the results, the others only errors
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            return _main(argv, quiet=True)
    return _main(argv)


def _main(argv: list[str] | None, quiet: bool = False) -> int:
    import warnings

    from vaetool.errors import VaetoolError, VaetoolWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if quiet else "always", VaetoolWarning)
            warnings.showwarning = _show_warning
            result = _command()(args=argv, prog_name="vaetool", standalone_mode=False)
    except typer.Exit as stop:
        return stop.exit_code
    except _usage_errors() as usage:
        usage.show()
        return usage.exit_code
    except (KeyboardInterrupt, typer.Abort):
        _say("interrupted")
        return 130
    except VaetoolError as error:
        code = getattr(error, "exit_code", 1)  # 130: a training run stopped by Ctrl-C
        said = shown(Exception.__str__(error), _flags(sys.argv[1:] if argv is None else argv))
        _say(f"{'interrupted' if code == 130 else 'error'}: {said}")
        return code
    except OSError as error:  # a disk full or a permission problem outside our checks
        where = f" ({error.filename})" if error.filename else ""
        _say(f"error: {error.strerror or error}{where}")
        return 1
    if result == 130:  # typer returns 130 for a Ctrl-C it caught itself
        _say("interrupted")
    return result if isinstance(result, int) else 0


def _flags(argv: list[str]) -> frozenset[str] | None:
    """The long options of the command ``argv`` runs (errors show a field as its flag)."""
    return command_flags(_command(), tuple(argv))


@functools.cache
def _command() -> Any:
    """The click command typer builds from ``app``, built once per process (building it walks
    every command's signature: ~0.1 s, which a notebook or a test calling :func:`main` many
    times would otherwise pay per call)."""
    import typer.main

    return typer.main.get_command(app)


def _usage_errors() -> tuple[type[Exception], ...]:
    """typer's usage-error base (TyperException in typer >= 0.29, click's before)."""
    base = getattr(typer, "TyperException", None)
    if base is not None:
        return (base,)
    import click  # older typer: click is its dependency

    return (click.ClickException,)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings from the core: one line on stderr, no source location."""
    text = Exception.__str__(message) if isinstance(message, Warning) else str(message)
    _say(f"warning: {shown(text)}")


def _say(line: str) -> None:
    """One unwrapped line on stderr (rich would wrap long paths)."""
    sys.stderr.write(line.replace("\n", " ") + "\n")


def run() -> None:
    sys.exit(main())
