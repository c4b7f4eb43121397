"""HTML building blocks of the report: escaping, a page, a table, a figure, a note.

Every figure module (`zfkeras.report.figures.*`) writes its section with these,
so the pages look alike and every name that comes from data (class names, file
names, layer names) goes through `esc` (and paths in `src`/`href` through `url`).
Plain HTML + inline CSS: no script, no network; the Content-Security-Policy
forbids scripts and remote loads even if a future edit forgets to escape.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import html
import math
import os
from typing import Iterable, Sequence
from urllib.parse import quote

import numpy as np

__all__ = ["CSS", "CSP", "FigureItem", "esc", "figure", "finding", "fmt", "kv", "missing", "note", "page", "pct",
           "safe", "table", "url"]

CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa;line-height:1.45}
header{background:#20232a;color:#fff;padding:.8em 1.5em}
header a{color:#9cdcfe;margin-right:1em;text-decoration:none}
header h1{margin:.1em 0 .3em;font-size:1.4em}
main{padding:0 1.5em 2em;max-width:1500px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.4em 1.2em 1em;margin:1.2em 0}
h2{font-size:1.2em;border-bottom:1px solid #eee;padding-bottom:.2em}
h3{font-size:1.05em;margin:.9em 0 .3em}
p.look{background:#eef6ff;border-left:4px solid #3a7bd5;padding:.4em .8em;font-size:.93em}
p.finding{background:#f2f8ee;border-left:4px solid #4a9a3a;padding:.4em .8em;font-size:.93em}
p.missing{background:#fff6e5;border-left:4px solid #e0a030;padding:.4em .8em;font-size:.93em}
code,pre{background:#f3f3f3;padding:.1em .3em;border-radius:3px;font-size:.9em}
pre{padding:.5em;overflow-x:auto}
table{border-collapse:collapse;font-size:.9em;margin:.4em 0}
th,td{border:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:.5em 0}
figure.wide img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.maps{display:flex;flex-wrap:wrap;gap:10px}
.fmap{border:1px solid #ddd;border-radius:4px;padding:4px;background:#fff;margin:0}
.fmap a{text-decoration:none;color:inherit}
.fmap img{image-rendering:pixelated;vertical-align:top;max-width:none}
.fmap img.dream{image-rendering:auto;margin-right:6px}
.fmap figcaption{text-align:center}
.fmap details{font-size:.8em;max-width:420px}
p.dead{font-size:.9em;color:#555}
a.big{display:none}
a.big:target{display:flex;flex-direction:column;align-items:center;justify-content:center;position:fixed;inset:0;z-index:10;background:rgba(20,20,20,.88);color:#fff;text-decoration:none;font-size:.9em}
a.big img{height:auto;max-width:96vw;max-height:88vh;object-fit:contain;image-rendering:pixelated;background:#fff;border:4px solid #fff}
a.big span{margin-top:.5em}
.pager a{margin-right:1em}
footer{color:#777;font-size:.8em;padding:1em 1.5em}
"""


def esc(value) -> str:
    """`html.escape(str(value), quote=True)`: safe as element text and inside a quoted attribute."""
    return html.escape(str(value), quote=True)


def url(path: str, fragment: str = "") -> str:
    """A relative path (and optional `#fragment`) as an attribute value.

    The path is percent-encoded (keeping `/`; a `#` or `?` in a file name is
    encoded, not read as a fragment or query), then HTML-escaped.
    """
    out = quote(str(path).replace(os.sep, "/"), safe="/")
    if fragment:
        out += "#" + quote(fragment, safe="")
    return esc(out)



def safe(name: str) -> str:
    """A file-name-safe form of a layer name (layer names are Keras identifiers, but be sure)."""
    out = "".join(c if c.isalnum() or c in "_-" else "_" for c in str(name))
    return out or "layer"



@dataclasses.dataclass
class FigureItem:
    """A figure file inside the report folder, with a caption (plain text).

    Attributes:
        path: path relative to the report folder (posix), e.g. "occlusion/img.png".
        caption: plain text, escaped when rendered.
        title: optional heading above the figure.
    """

    path: str
    caption: str = ""
    title: str = ""


def page(title: str, body: str, depth: int, nav: Sequence[tuple[str, str]] = ()) -> str:
    """A whole HTML page; `depth` = folders below the report root (for relative links).

    `nav`: `(href from the report root, optionally with "#anchor", text)` pairs (our own names only).
    """
    up = "../" * depth
    links = "".join(
        f'<a href="{url(up + href.partition("#")[0], href.partition("#")[2])}">{esc(text)}</a>' for href, text in nav
    )
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    from zfkeras import __version__

    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>"
        f"<header><h1>{esc(title)}</h1><nav>{links}</nav></header>\n<main>{body}</main>\n"
        f"<footer>zfkeras {esc(__version__)}, written {esc(stamp)}. Zeiler &amp; Fergus (2013), "
        "Visualizing and Understanding Convolutional Networks.</footer></body></html>\n"
    )


def table(header: Sequence[str], rows: Iterable[Sequence], numeric: Sequence[bool] | None = None) -> str:
    numeric = list(numeric) if numeric is not None else [False] * len(header)
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{esc(c)}</td>' if numeric[i] else f"<td>{esc(c)}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def kv(rows: Sequence[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows) + "</table>"


def figure(item: FigureItem, depth: int = 0) -> str:
    title = f"<h3>{esc(item.title)}</h3>" if item.title else ""
    cap = f"<figcaption>{esc(item.caption)}</figcaption>" if item.caption else ""
    alt = item.caption or item.title or item.path
    return (
        f'{title}<figure class="wide"><a href="{url("../" * depth + item.path)}">'
        f'<img src="{url("../" * depth + item.path)}" alt="{esc(alt)}"></a>{cap}</figure>'
    )


def missing(text: str, command: str | None) -> str:
    cmd = f" Run: <code>{esc(command)}</code>" if command else ""
    return f'<p class="missing">{esc(text)}{cmd}</p>'


def fmt(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, (float, np.floating)):
        return "-" if math.isnan(float(v)) else f"{float(v):.{digits}g}"
    return str(v)


def pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * float(v):.1f}%"


def note(text: str) -> str:
    """A caveat or a "reused from ..." line under a section (plain text)."""
    return f'<p class="missing">{esc(text)}</p>'


def finding(sentences: Sequence[str]) -> str:
    """What this model shows, in sentences computed from its numbers ("" when there is none)."""
    if not sentences:
        return ""
    return '<p class="finding"><b>This model</b> (same numbers): ' + " ".join(esc(s) for s in sentences) + "</p>"


def failure_reason(err: BaseException) -> str:
    """`"ValueError: <first line>"`: why a figure was skipped, in one line."""
    from zfkeras.utils.model_files import first_line

    return f"{type(err).__name__}: {first_line(err)}" if str(err).strip() else type(err).__name__
