"""The report as one self-contained HTML page: a table and a small inline SVG plot per
number (weekly values, the date marked), nothing fetched from elsewhere."""

from __future__ import annotations

from html import escape

from salespulse.report.build import Result
from salespulse.report.figures import FIGURES, format_change, format_value

WIDTH, HEIGHT, PAD = 260, 90, 12

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { padding: 0.25em 0.8em; text-align: right; border-bottom: 1px solid #ddd; }
th:first-child, td:first-child { text-align: left; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figcaption { font-size: 0.85em; color: #555; }
"""


def plot(values: list[float | None], split: int) -> str:
    """Weekly values as points joined by a line; a dashed line where *split* weeks end."""
    known = [v for v in values if v is not None]
    top = max(known, default=1.0) or 1.0
    step = (WIDTH - 2 * PAD) / max(1, len(values) - 1)

    def x(index: float) -> float:
        return PAD + index * step

    def y(value: float) -> float:
        return HEIGHT - PAD - (value / top) * (HEIGHT - 2 * PAD)

    points = [(x(i), y(v)) for i, v in enumerate(values) if v is not None]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#bbb"/>',
        f'<line x1="{x(split - 0.5):.1f}" y1="0" x2="{x(split - 0.5):.1f}" y2="{HEIGHT}" '
        'stroke="#8a2be2" stroke-dasharray="4 3"/>',
    ]
    if len(points) > 1:
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1f77b4"/>')
    parts += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="#1f77b4"/>' for px, py in points]
    parts.append("</svg>")
    return "".join(parts)


def section(result: Result) -> str:
    change, comparison = result.change, result.comparison
    rows = "".join(
        f"<tr><td>{escape(figure.title)}</td>"
        f"<td>{format_value(result.before[figure.key], figure.unit)}</td>"
        f"<td>{format_value(result.after[figure.key], figure.unit)}</td>"
        f"<td>{format_change(result.percent(figure.key))}</td></tr>"
        for figure in FIGURES
    )
    plots = "".join(
        f"<figure>{plot([week[figure.key] for week in result.weekly], comparison.weeks)}"
        f"<figcaption>{escape(figure.title)}, weekly</figcaption></figure>"
        for figure in FIGURES
    )
    return (
        f"<section><h2>{change.day.isoformat()} · {escape(change.subject.label())}: "
        f"{escape(change.title)}</h2>"
        f"<p>{comparison.weeks} weeks from {comparison.before[0].date()} against "
        f"{comparison.weeks} weeks from {comparison.after[0].date()} "
        "(ISO weeks in the company's time zone; the dashed line is the change).</p>"
        "<table><tr><th></th><th>before</th><th>after</th><th>change</th></tr>"
        f"{rows}</table><div class='plots'>{plots}</div></section>"
    )


def page(results: list[Result]) -> str:
    body = "".join(section(result) for result in results) or (
        "<p>No interventions or KPI changes in the company file.</p>"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>salespulse: interventions</title><style>{STYLE}</style></head>"
        f"<body><h1>What did each intervention do?</h1>{body}</body></html>\n"
    )
