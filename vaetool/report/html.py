"""A static, self-contained HTML report: one page, inline CSS, images as files beside it.

No server, no CDN, no external fonts or scripts: ``index.html`` opens by double-click. A few
lines of inline JavaScript record on ``<body data-images-loaded="n/m">`` how many images
decoded, which the browser test reads.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vaetool.report.tables import cell_text

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #1b1f23; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #e1e4e8; text-align: right; }
th { background: #f6f8fa; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
.scroll { max-height: 28rem; overflow-y: auto; display: inline-block; }
img { image-rendering: pixelated; max-width: 100%; border: 1px solid #e1e4e8; }
.note { color: #586069; font-size: 0.85rem; max-width: 60rem; }
.warning { background: #fff5e6; border-left: 4px solid #d9822b; padding: 0.4rem 0.8rem;
           max-width: 60rem; }
"""

CHECK_IMAGES = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images-loaded", ok + "/" + images.length);
});
"""


@dataclass(frozen=True)
class Section:
    """One heading with, in order, an optional note, table and image (a relative path)."""

    title: str
    note: str = ""
    table: pd.DataFrame | None = None
    table_id: str = ""
    image: str | None = None
    image_alt: str = ""
    scroll: bool = False


@dataclass(frozen=True)
class ReportPage:
    title: str
    subtitle: str
    summary: dict[str, Any] = field(default_factory=dict)
    sections: tuple[Section, ...] = ()
    warnings: tuple[str, ...] = ()  # shown in a highlighted box under the summary


def render_page(page: ReportPage) -> str:
    """The whole page as an HTML5 string."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(page.title)}</title>",
        f"<style>{STYLE}</style>",
        f"<script>{CHECK_IMAGES}</script>",
        "</head><body>",
        f"<h1>{html.escape(page.title)}</h1>",
        f'<p class="note">{html.escape(page.subtitle)}</p>',
        _summary_table(page.summary),
        *(f'<p class="warning">warning: {html.escape(line)}</p>' for line in page.warnings),
    ]
    parts += [_section(section) for section in page.sections]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _summary_table(summary: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr><th class="text">{html.escape(str(k))}</th>'
        f'<td class="text">{html.escape(cell_text(v))}</td></tr>'
        for k, v in summary.items()
    )
    return f'<table id="summary">{rows}</table>'


def _section(section: Section) -> str:
    parts = [f"<h2>{html.escape(section.title)}</h2>"]
    if section.note:
        parts.append(f'<p class="note">{html.escape(section.note)}</p>')
    if section.table is not None:
        table = frame_html(section.table, section.table_id)
        parts.append(f'<div class="scroll">{table}</div>' if section.scroll else table)
    if section.image is not None:
        src, alt = html.escape(section.image), html.escape(section.image_alt or section.title)
        parts.append(f'<p><img src="{src}" alt="{alt}"></p>')
    return "\n".join(parts)


def frame_html(frame: pd.DataFrame, table_id: str = "") -> str:
    """A DataFrame as an HTML table, numbers right-aligned, text left, all cells escaped."""
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and frame[c].dtype != bool for c in frame]
    align = ["" if num else ' class="text"' for num in numeric]
    head = "".join(
        f"<th{a}>{html.escape(str(c))}</th>" for c, a in zip(frame.columns, align, strict=True)
    )
    rows = [
        "".join(
            f"<td{a}>{html.escape(cell_text(v, 4))}</td>" for v, a in zip(row, align, strict=True)
        )
        for row in frame.itertuples(index=False)
    ]
    body = "".join(f"<tr>{cells}</tr>" for cells in rows)
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
