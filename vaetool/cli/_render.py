"""Turn core results (DataFrames) into output: a rich table or text in another --format."""

from __future__ import annotations

from pathlib import Path

from vaetool.cli import _console

FORMAT_CHOICES = ("table", "csv", "json", "markdown", "latex")


def check_format(fmt: str) -> None:
    from vaetool.errors import ConfigError

    if fmt not in FORMAT_CHOICES:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMAT_CHOICES)}")


def emit_text(text: str, output: Path | None) -> None:
    """Print ``text`` to stdout, or write it atomically to ``output``."""
    if output is None:
        _console.out.file.write(text)
        _console.out.file.flush()
        return
    from vaetool.store.atomic import write_atomic

    write_atomic(output, text.encode())
    _console.err.print(f"wrote {output}")


def rich_table(frame, title: str | None = None):
    """A rich Table with one column per DataFrame column, numbers right-aligned."""
    from rich.markup import escape
    from rich.table import Table

    from vaetool.report.tables import cell_text

    table = Table(title=title, title_justify="left", header_style="bold")
    for column in frame.columns:
        numeric = frame[column].dtype.kind in "iuf"  # ints and floats, not bools or text
        table.add_column(escape(str(column)), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(escape(cell_text(v, 4)) for v in row))
    return table


def emit_renderables(items: list, output: Path | None) -> None:
    """Print rich tables/text on stdout, or write their plain-text rendering to ``output``."""
    if output is None:
        for item in items:
            _console.out.print(item)
        return
    import io

    from rich.console import Console

    console = Console(record=True, width=200, file=io.StringIO())
    for item in items:
        console.print(item)
    emit_text(console.export_text(), output)


def emit_frame(frame, fmt: str, output: Path | None, title: str | None = None) -> None:
    """Show one table in ``fmt`` on stdout or in ``output``."""
    check_format(fmt)
    if fmt == "table":
        emit_renderables([rich_table(frame, title)], output)
        return
    from vaetool.report.tables import format_frame

    emit_text(format_frame(frame, fmt), output)
