"""A report as files: HTML for the web and e-mail (one file, styles inside, charts as inline SVG, no script) and
PDF (fpdf2, pure Python, with the DejaVu font matplotlib ships, so any text prints; charts as PNG). Charts are drawn
by matplotlib; everything here is pure: a ``Document`` in, bytes out."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib as mpl
from fpdf import FPDF
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from matplotlib.figure import Figure

from northstar.core.documents import Chart, Document, Table

TEMPLATES = Path(__file__).parent / "templates"
FONT = Path(mpl.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
BOLD = Path(mpl.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"
ACCENT = "#2f6db5"
_html = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _figure(chart: Chart) -> Figure:
    figure = Figure(figsize=(8, 3), dpi=110)  # no pyplot: no global state, no display
    axes = figure.add_subplot()
    points = [
        (label, float(value)) for label, value in zip(chart.labels, chart.values, strict=True) if value is not None
    ]
    axes.plot([label for label, _ in points], [value for _, value in points], color=ACCENT, linewidth=2.5, marker="o")
    axes.set_title(chart.title, loc="left", fontsize=12, fontweight="bold")
    axes.set_ylabel(chart.unit)
    axes.yaxis.set_major_formatter(lambda value, _: f"{value:,.{chart.decimals}f}")
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", alpha=0.3)
    axes.tick_params(axis="x", labelrotation=45, labelsize=8)
    figure.tight_layout()
    return figure


def chart_svg(chart: Chart) -> str:
    figure = _figure(chart)
    out = io.StringIO()
    figure.savefig(out, format="svg")
    svg = out.getvalue()
    return svg[svg.index("<svg") :]  # without the XML prolog: it sits inside the page


def chart_png(chart: Chart) -> bytes:
    figure = _figure(chart)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def page(template: str, **context: object) -> str:
    """A standalone page of the reports module's (a share link's), from its own templates."""
    return _html.get_template(template).render(**context)


def html(document: Document) -> bytes:
    charts = [(chart.title, chart_svg(chart)) for chart in document.charts]
    return _html.get_template("document.html").render(document=document, charts=charts).encode()


def pdf(document: Document) -> bytes:
    out = FPDF(format="A4")
    out.set_auto_page_break(auto=True, margin=18)
    out.add_font("DejaVu", "", str(FONT))
    out.add_font("DejaVu", "B", str(BOLD))
    out.set_title(document.title)
    out.add_page()
    width = out.epw
    out.set_font("DejaVu", "B", 18)
    out.multi_cell(width, 9, document.title, new_x="LMARGIN", new_y="NEXT")
    out.set_font("DejaVu", "", 10)
    out.set_text_color(90, 90, 90)
    out.multi_cell(width, 6, document.subtitle, new_x="LMARGIN", new_y="NEXT")
    out.set_text_color(20, 20, 20)
    out.ln(3)
    for said, listed in document.blocks:
        out.set_font("DejaVu", "", 11)
        if said:
            out.multi_cell(width, 6, said, new_x="LMARGIN", new_y="NEXT")
        for item in listed:
            out.multi_cell(width, 6, f"•  {item}", new_x="LMARGIN", new_y="NEXT")
        out.ln(2)
    for chart in document.charts:
        out.image(io.BytesIO(chart_png(chart)), w=width)
        out.ln(2)
    if document.metrics:
        _pdf_table(out, Table("The numbers", (), [(name, said) for name, said in document.metrics]), (30, 70))
    for table in document.tables:
        _pdf_table(out, table, None)
    if document.footer:
        out.ln(4)
        out.set_font("DejaVu", "", 8)
        out.set_text_color(110, 110, 110)
        out.multi_cell(width, 5, document.footer, new_x="LMARGIN", new_y="NEXT")
    return bytes(out.output())


def _pdf_table(out: FPDF, table: Table, widths: tuple[int, ...] | None) -> None:
    width = out.epw
    out.set_font("DejaVu", "B", 12)
    out.cell(width, 8, table.title, new_x="LMARGIN", new_y="NEXT")
    out.set_font("DejaVu", "", 10)
    with out.table(col_widths=widths, text_align="LEFT", first_row_as_headings=bool(table.header)) as grid:
        for cells in [table.header, *table.rows] if table.header else table.rows:
            row = grid.row()
            for cell in cells:
                row.cell(cell)
    out.ln(3)
