"""The printed shipping label: Django template → HTML → PDF with WeasyPrint (100 × 150 mm).

Rendering costs about half a second: call it from a Celery task, never inside a request.
"""

import io
import re

import barcode
from barcode.writer import SVGWriter
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from weasyprint import HTML

from fulfillment.carriers.base import Parcel
from oms.core.money import quantize

LABEL_TEMPLATE = "fulfillment/label.html"
_SVG_PREAMBLE = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_SVG_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# WeasyPrint reads `style` on inline SVG as HTML CSS and rejects `fill`; presentation attributes work.
_SVG_FILL_STYLE = re.compile(r'style="fill:\s*(\w+);?"')


def code128_svg(value: str) -> str:
    """An inline `<svg>` Code 128 barcode (no human-readable text: the template prints it)."""
    output = io.BytesIO()
    barcode.Code128(value, writer=SVGWriter()).write(
        output, options={"write_text": False, "module_width": 0.3, "module_height": 16, "quiet_zone": 3}
    )
    svg = output.getvalue().decode("utf-8")
    svg = _SVG_COMMENT.sub("", _SVG_PREAMBLE.sub("", svg, count=1))
    return _SVG_FILL_STYLE.sub(r'fill="\1"', svg).strip()


def render_label_pdf(*, parcel: Parcel, carrier_name: str, service: str, tracking_number: str) -> bytes:
    currency = parcel.currency
    customs_lines = [
        {
            "sku": line.sku,
            "name": line.name,
            "quantity": line.quantity,
            "hs_code": line.hs_code,
            "origin_country": line.origin_country,
            "unit_value": quantize(line.unit_value, currency),
            "value": quantize(line.unit_value * line.quantity, currency),
        }
        for line in parcel.lines
    ]
    context = {
        "parcel": parcel,
        "carrier_name": carrier_name,
        "service": service,
        "tracking_number": tracking_number,
        "barcode_svg": mark_safe(code128_svg(tracking_number)),  # generated here, no user input inside
        "weight_kg": f"{parcel.weight_grams / 1000:.3f}",
        "declared_value": quantize(parcel.declared_value, currency),
        "currency": currency,
        "is_international": parcel.is_international,
        "customs_lines": customs_lines,
    }
    html = render_to_string(LABEL_TEMPLATE, context)
    return HTML(string=html).write_pdf()
