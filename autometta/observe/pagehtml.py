"""What the HTML pages autometta writes share: the style sheet, the content policy, escaping, a status's
badge and the list of what needs you (the dashboard, :mod:`.dashboard`; a stage's page, :mod:`.stagepage`)."""

from __future__ import annotations

import html
from typing import Any, Dict, List, Optional

CSS = """
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--muted:#667085;--line:#e4e7ec;--ok:#12805c;--bad:#c4320a;
--warn:#b54708;--run:#175cd3;--bar:#6172f3}
@media (prefers-color-scheme:dark){:root{--bg:#101318;--card:#181c24;--ink:#e6e9ef;--muted:#98a2b3;
--line:#2b3140;--bar:#8098f9}}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;
background:var(--bg);color:var(--ink)}header{padding:18px 24px;border-bottom:1px solid var(--line)}
h1{font-size:20px;margin:0 0 4px}h2{font-size:17px;margin:0}h3{font-size:13px;text-transform:uppercase;
letter-spacing:.04em;color:var(--muted);margin:18px 0 6px}main{padding:16px 24px;display:grid;gap:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px}
.muted{color:var(--muted)}.row{display:flex;flex-wrap:wrap;gap:8px 18px;align-items:baseline}
.kpi b{font-size:16px}table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td code{white-space:nowrap}code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace}pre{margin:0;white-space:pre-wrap;
word-break:break-all}.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;
border:1px solid currentColor}.s-completed{color:var(--ok)}.s-in_progress{color:var(--run)}
.s-pending{color:var(--muted)}.s-failed,.s-stalled,.s-verifier_failed,.s-verifier_panel_no_quorum,
.s-merge_conflict,.s-secret_blocked,.s-halted,.s-stuck,.s-over-budget,.s-unsupervised{color:var(--bad)}
.s-quiet,.s-stopped{color:var(--warn)}
.s-running{color:var(--run)}.alerts{border-left:4px solid var(--bad);padding:6px 12px;margin-top:10px}
.alerts li{color:var(--bad)}svg text{fill:var(--ink);font-size:12px}svg .bar{fill:var(--bar)}
svg .val{fill:var(--muted)}.stale{color:var(--bad);font-weight:600}.needs{border-left:4px solid var(--bad)}
.needs li{margin:4px 0}.needs .what{color:var(--bad);font-weight:600}.needs .fix{display:block;margin-top:2px}
"""

CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'")


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def table(head: str, rows: List[str], empty: str) -> str:
    """A table under the header cells ``head`` (``<th>`` markup) holding ``rows`` (``<tr>`` markup); ``empty`` in a
    muted paragraph when there are no rows."""
    if not rows:
        return f'<p class="muted">{empty}</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def shown(template: str, value: Any) -> str:
    """``template`` with its ``{}`` the escaped ``value``; "" when there is no value (the part a page leaves out)."""
    return template.format(e(value)) if value else ""


def badge(status: Any) -> str:
    text = str(status or "-")
    return f'<span class="badge s-{e(text)}">{e(text)}</span>'


def needs_html(items: List[Dict[str, Any]], links: Optional[Dict[str, Dict[str, str]]] = None,
               with_repo: bool = False, prefix: str = "") -> str:
    """A list of what needs you, each item with its command; '' when nothing does.

    ``links``: repo path -> stage id -> stage page, to link each item's stage;
    ``prefix``: where the stage pages are, relative to this page.
    """
    if not items:
        return ""
    out = [f'<div class="alerts needs"><b>Needs you ({len(items)})</b><ul>']
    for item in items:
        link = ((links or {}).get(str(item.get("repo"))) or {}).get(str(item.get("stage_id")))
        stage = (f' <a href="{e(prefix + link)}">the stage</a>' if link else "")
        where = f'<b>{e(item.get("name"))}</b> ' if with_repo else ""
        since = f' <span class="muted">since {e(item["since"])}</span>' if item.get("since") else ""
        fix = ""
        if item.get("command") or item.get("note"):
            fix = ('<span class="fix">' + (f'<code>{e(item["command"])}</code> ' if item.get("command") else "")
                   + (f'<span class="muted">{e(item["note"])}</span>' if item.get("note") else "") + "</span>")
        look = (f'<span class="fix muted">look: <code>{e(item["look"])}</code></span>' if item.get("look") else "")
        out.append(f'<li class="need k-{e(item.get("kind"))}">{where}<span class="what">{e(item.get("summary"))}</span>'
                   f"{since}{stage}{fix}{look}</li>")
    out.append("</ul></div>")
    return "".join(out)
