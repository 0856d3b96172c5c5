"""A report page as blocks (headings, paragraphs, tables, images, command listings), rendered to
Markdown and to standalone HTML. Knows nothing of runs or claims."""

import html
from dataclasses import dataclass, field


@dataclass
class Block:
    """One piece of the page: heading, text, table, image or code, rendered to both formats."""

    kind: str
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def to_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            lines += ["#" * int(b.kind[1]) + " " + b.text, ""]
        elif b.kind == "p":
            lines += [b.text, ""]
        elif b.kind == "table":
            cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
            lines.append("| " + " | ".join(cell(h) for h in b.header) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in b.rows]
            lines.append("")
        elif b.kind == "img":
            lines += [f"![{b.rows[0][0]}]({b.text})", ""]
        elif b.kind == "details":
            lines += ["Commands:", "", "```", b.text, "```", ""]
    return "\n".join(lines)


def to_html(blocks: list[Block]) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>vimae reproduction report</title>',
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;"
        "padding:3px 6px;font-size:0.9em;vertical-align:top}img{max-width:100%}"
        "pre{background:#f4f4f4;padding:0.5em;overflow-x:auto;font-size:0.8em}</style>",
        "</head><body>",
    ]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            parts.append(f"<{b.kind}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            parts.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{e(str(h))}</th>" for h in b.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in b.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b.kind == "img":
            caption = e(b.rows[0][0])
            parts.append(
                f'<figure><img src="{e(b.text)}" alt="{caption}">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
        elif b.kind == "details":
            parts.append(f"<details><summary>commands</summary><pre>{e(b.text)}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
