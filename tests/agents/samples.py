"""Real inputs for the agents, made here: invoices as a text PDF, a scanned PNG and a scanned PDF, a DOCX, web pages."""

from __future__ import annotations

import io
import json
from typing import Any

import docx
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

VENDOR = "Acme Corp"
INVOICE_NUMBER = "INV-2024-001"
ITEMS = [
    ("Website design", 1, "1,200.00", 1200.00),
    ("Hosting plan", 12, "25.00", 300.00),
    ("Support hours", 5, "80.00", 400.00),
]
SUBTOTAL, TAX, TOTAL = 1900.00, 190.00, 2090.00


def invoice_lines(date: str = "2024-01-15") -> list[str]:
    return [
        VENDOR,
        "742 Evergreen Terrace, Springfield",
        "INVOICE",
        f"Invoice Number: {INVOICE_NUMBER}",
        f"Invoice Date: {date}",
        "Due Date: 2024-02-14",
        "Bill To: Globex Inc",
        "Description Qty Price Amount",
        *(f"{name} {qty} {price} {amount:,.2f}" for name, qty, price, amount in ITEMS),
        f"Subtotal {SUBTOTAL:,.2f}",
        f"Tax (10%) {TAX:,.2f}",
        f"Total ${TOTAL:,.2f}",
    ]


def invoice_pdf(date: str = "2024-01-15", lines: list[str] | None = None) -> bytes:
    """A text PDF (fpdf2, core Helvetica font) laid out as an invoice: header, table, totals."""
    pdf = FPDF(format="A4")
    pdf.set_title(f"Invoice {INVOICE_NUMBER}")
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines or invoice_lines(date):
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def text_pdf(paragraphs: list[str], title: str | None = None) -> bytes:
    pdf = FPDF(format="A4")
    if title:
        pdf.set_title(title)
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for paragraph in paragraphs:
        pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(6)
    return bytes(pdf.output())


def scanned_image(lines: list[str] | None = None, *, size: int = 44) -> Image.Image:
    """The invoice's text drawn in black on a white page, large and clear, as a scanner would give it."""
    lines = lines or invoice_lines("January 15, 2024")
    font = ImageFont.load_default(size=size)
    height = 120 + len(lines) * (size + 26)
    image = Image.new("L", (1700, height), color=255)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((100, 80 + row * (size + 26)), line, fill=0, font=font)
    return image


def scanned_png(lines: list[str] | None = None) -> bytes:
    buffer = io.BytesIO()
    scanned_image(lines).save(buffer, format="PNG")
    return buffer.getvalue()


def scanned_pdf(lines: list[str] | None = None) -> bytes:
    """A PDF whose only page is the scanned image (no text layer), as a scanner's PDF is."""
    buffer = io.BytesIO()
    scanned_image(lines).save(buffer, format="PDF", resolution=200)
    return buffer.getvalue()


def docx_file(title: str, sections: list[tuple[str, list[str]]]) -> bytes:
    document = docx.Document()
    document.add_heading(title, level=1)
    for heading, paragraphs in sections:
        document.add_heading(heading, level=2)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


BLOG_TITLE = "Why composting matters for city gardens"
BLOG_PARAGRAPHS = [
    "Composting turns kitchen scraps into rich soil for city gardens. A single household can divert "
    "around 150 kilograms of food waste from landfill every year by composting.",
    "City gardens suffer from compacted, nutrient-poor soil. Compost restores the structure of that soil, "
    "helps it hold water, and feeds the microbes that plants depend on.",
    "Getting started with composting is simple. Mix green scraps such as vegetable peels with brown "
    "material such as dry leaves, keep the pile moist, and turn it every week.",
    "Community composting programs make it easier still. Neighbours share one bin, volunteers turn the "
    "pile, and the finished compost goes back to the city gardens that need it most.",
    "Dr. Rivera's 2023 survey of 40 city gardens found that beds fed with compost yielded 30% more "
    "vegetables. Composting is the cheapest upgrade a city garden can make.",
]
NAV_TEXT = "Subscribe to our newsletter for weekly deals"
FOOTER_TEXT = "Copyright Example Media, all rights reserved"


def blog_html() -> str:
    body = "".join(f"<p>{p}</p>" for p in BLOG_PARAGRAPHS)
    return f"""<!doctype html><html><head><title>{BLOG_TITLE} | Example Media</title>
<meta charset="utf-8"></head><body>
<header><nav><a href="/">Home</a> <a href="/deals">{NAV_TEXT}</a></nav></header>
<div class="sidebar"><ul><li><a href="/a">Trending: ten gadgets</a></li>
<li><a href="/b">Sports scores</a></li></ul></div>
<main><article><h1>{BLOG_TITLE}</h1>
<img src="/images/compost-bin.jpg" alt="A compost bin">
{body}
</article></main>
<footer><p>{FOOTER_TEXT}</p></footer>
</body></html>"""


BUSINESS = {
    "business_name": "Joe's Coffee Shop",
    "location": "Seattle, WA",
    "phone": "(206) 555-0142",
    "address": "123 Pine Street",
    "primary_keywords": ["coffee shop", "espresso", "cafe"],
    "service_area": "Capitol Hill, Downtown Seattle",
}


def business_json_ld(**overrides: Any) -> str:
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "CafeOrCoffeeShop",
        "name": "Joe's Coffee Shop",
        "telephone": "+1-206-555-0142",
        "url": "https://joescoffee.example",
        "address": {
            "@type": "PostalAddress",
            "streetAddress": "123 Pine St",
            "addressLocality": "Seattle",
            "addressRegion": "WA",
            "postalCode": "98101",
        },
        "openingHours": "Mo-Fr 07:00-18:00",
        "geo": {"@type": "GeoCoordinates", "latitude": 47.61, "longitude": -122.33},
        "areaServed": ["Capitol Hill", "Downtown Seattle"],
    }
    data.update(overrides)
    return json.dumps(data)


def business_html(
    *,
    title: str | None = "Joe's Coffee Shop | Espresso & Coffee in Seattle",
    description: str | None = "Joe's Coffee Shop serves espresso, pour-over and pastries on Capitol Hill, "
    "Seattle. Open weekdays from 7am.",
    json_ld: str | None = None,
    phone: str = "(206) 555-0142",
    with_json_ld: bool = True,
) -> str:
    head = ['<meta charset="utf-8">', '<meta name="viewport" content="width=device-width, initial-scale=1">']
    if title is not None:
        head.append(f"<title>{title}</title>")
    if description is not None:
        head.append(f'<meta name="description" content="{description}">')
    if with_json_ld:
        head.append(f'<script type="application/ld+json">{json_ld or business_json_ld()}</script>')
    return f"""<!doctype html><html><head>{"".join(head)}</head><body>
<h1>Joe's Coffee Shop: espresso in Seattle</h1>
<h2>Our coffee shop on Capitol Hill</h2>
<p>Joe's Coffee Shop is a neighbourhood cafe serving espresso and filter coffee to Capitol Hill and
Downtown Seattle since 2009.</p>
<h3>Visit us</h3>
<p>123 Pine Street, Seattle, WA 98101. Call <a href="tel:{phone}">{phone}</a>.</p>
<p><a href="https://maps.google.com/?cid=123">Find us on Google Maps</a></p>
<img src="/cup.jpg" alt="A cup of espresso"><img src="/shop.jpg" alt="The shop front">
</body></html>"""


# Tables in a text PDF (ReportLab, ruled cells as most generated reports draw them) and page images.
STOCK_TABLE = [
    ["SKU", "Product", "Qty", "Unit price"],
    ["A-100", "Widget, large", "3", "12.50"],
    ["B-220", 'Gadget "mini"', "10", "-4.00"],
]
REGION_TABLE = [["Region", "Sales"], ["North", "1,200"], ["South", "800"]]


def table_pdf(tables: list[list[list[str]]] | None = None, heading: str = "Quarterly stock report") -> bytes:
    """A text PDF with a heading and one ruled table per page (ReportLab platypus)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table, TableStyle

    buffer = io.BytesIO()
    story: list[Any] = [Paragraph(heading, getSampleStyleSheet()["Title"])]
    for number, rows in enumerate(tables or [STOCK_TABLE, REGION_TABLE]):
        if number:
            story += [PageBreak(), Paragraph(f"Table {number + 1}", getSampleStyleSheet()["Normal"])]
        table = Table(rows)
        table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
        story.append(table)
    SimpleDocTemplate(buffer, pagesize=A4, title=heading).build(story)
    return buffer.getvalue()


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:  # fonts-dejavu-core, which the install script installs
        return ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def page_image(lines: list[str], size: int = 40) -> Image.Image:
    """Lines of black text on a white page, as a scanner gives them."""
    font = _font(size)
    image = Image.new("L", (1600, 160 + len(lines) * (size + 30)), color=255)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((100, 80 + row * (size + 30)), line, fill=0, font=font)
    return image


def tiff_pages(pages: list[list[str]]) -> bytes:
    """A multi-page TIFF, one frame per page (deflate-compressed, as scanners' TIFFs often are)."""
    images = [page_image(lines) for lines in pages]
    buffer = io.BytesIO()
    images[0].save(buffer, format="TIFF", save_all=True, append_images=images[1:], compression="tiff_deflate")
    return buffer.getvalue()


def bmp_page(lines: list[str]) -> bytes:
    buffer = io.BytesIO()
    page_image(lines).save(buffer, format="BMP")
    return buffer.getvalue()
