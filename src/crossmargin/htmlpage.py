"""Self-contained HTML pages: inline PNG figures (matplotlib's object API), tables, one style.

Shared by the risk report (``crossmargin risk --html``) and the simulation report
(``crossmargin simulate --html``): a page has no external file and renders offline.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}
td:first-child,th:first-child{text-align:left}
.flag{color:#cc3311;font-weight:bold}figure{display:inline-block;margin:0.5em}
img{max-width:100%}
"""


def figure_png(fig: Any) -> str:
    """An ``<img>`` holding the figure as base64 PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table, every cell escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page_head(title: str) -> str:
    """Doctype, head with the style, and the title as ``<h1>``."""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
    )
