"""What every printed document shares: one WeasyPrint pass, Code 128 barcodes, the page counter,
printed addresses and amounts.

Fulfillment (pick lists, packing slips), billing (invoices, credit notes, dispute evidence) and any
later app that prints build their own HTML and come here for these pieces, so that a document of one
app never imports another app's documents.
"""

import re

import barcode
from babel.numbers import format_currency
from django.conf import settings
from django.utils import translation
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from weasyprint import HTML

# Code 128 geometry, in modules of 0.25 mm: bars 6 mm high with 1 mm above and below, 2 mm quiet zones.
BARCODE_MODULE_MM = 0.25
BARCODE_HEIGHT_MODULES = 24
BARCODE_MARGIN_MODULES = 4
BARCODE_QUIET_ZONE_MODULES = 8

ADDRESS_KEYS = ("name", "company", "line1", "line2", "line3", "postal_code", "city", "region", "country")

_BARS = re.compile("1+")


def render_pdf(html: str, *, progress=None) -> bytes:
    """One WeasyPrint pass. `progress(fraction)` is told when layout is done (most of the work) and
    at the end, for the cockpit's progress bar on large waves."""
    document = HTML(string=html, base_url=str(settings.BASE_DIR)).render()
    if progress is not None:
        progress(0.8)
    pdf = document.write_pdf()
    if progress is not None:
        progress(1.0)
    return pdf


def barcode_svg(value: str) -> SafeString:
    """Code 128 barcode of `value` as an inline <svg> element, or "" if Code 128 cannot encode it
    (ASCII only).

    python-barcode only encodes the value (its module string of 1s and 0s); each run of dark modules
    becomes one rectangle of a single <path>. The user units are modules, so every coordinate is an
    integer and the width/height in millimetres scale them: BARCODE_MODULE_MM per module, a quiet zone
    of BARCODE_QUIET_ZONE_MODULES on each side and BARCODE_MARGIN_MODULES above and below the bars.
    python-barcode's own SVG writer (minidom, a <rect> with a style attribute per bar) cost more than
    the rest of our layer together and made WeasyPrint log an "unknown property" warning per bar.
    """
    if not value:
        return mark_safe("")
    try:
        modules = barcode.get("code128", value).build()[0]
    except (barcode.errors.BarcodeError, ValueError, KeyError, UnicodeError):
        return mark_safe("")
    quiet, margin, bar_height = BARCODE_QUIET_ZONE_MODULES, BARCODE_MARGIN_MODULES, BARCODE_HEIGHT_MODULES
    width = len(modules) + 2 * quiet
    height = bar_height + 2 * margin
    path = "".join(
        f"M{quiet + bar.start()} {margin}h{bar.end() - bar.start()}v{bar_height}h-{bar.end() - bar.start()}z"
        for bar in _BARS.finditer(modules)
    )
    return mark_safe(  # integers only: no user text reaches the markup
        f'<svg class="barcode" role="img" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width * BARCODE_MODULE_MM:g}mm" height="{height * BARCODE_MODULE_MM:g}mm" '
        f'viewBox="0 0 {width} {height}"><path d="{path}"/></svg>'
    )


def _css_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def page_counter_css() -> SafeString:
    """CSS `content` value for the footer, e.g. "page " counter(page) " of " counter(pages), from a
    translatable sentence (translators see the whole sentence, not fragments)."""
    sentence = gettext("page %(page)s of %(pages)s")
    parts = []
    for token in re.split(r"(%\(page\)s|%\(pages\)s)", sentence):
        if token == "%(page)s":
            parts.append("counter(page)")
        elif token == "%(pages)s":
            parts.append("counter(pages)")
        elif token:
            parts.append(_css_string(token))
    return mark_safe(" ".join(parts))


def format_money(amount, currency: str) -> str:
    """An amount as the active language writes it ("€12.00", "12,00 €"); "" for no amount."""
    if amount is None:
        return ""
    return format_currency(amount, currency, locale=translation.to_locale(translation.get_language() or "en"))


def address_lines(address: dict[str, str]) -> list[str]:
    """Address as printed lines: name, company, street lines, "postal code city", region, country;
    keys outside that list are appended in their order."""

    def get(key: str) -> str:
        return str(address.get(key) or "").strip()

    lines = [get("name"), get("company"), get("line1"), get("line2"), get("line3")]
    lines.append(" ".join(part for part in (get("postal_code"), get("city")) if part))
    lines += [get("region"), get("country")]
    lines += [str(value).strip() for key, value in address.items() if key not in ADDRESS_KEYS and value]
    return [line for line in lines if line]
