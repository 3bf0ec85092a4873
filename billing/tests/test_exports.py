"""Exports: the FEC journal's layout and balance, invoices and credit notes as CSV and XLSX, the
reconciliation report, and a background export followed to its file.

Invoices and credit notes are written with bulk_create here (test data: their issuing services are
tested on their own), with consistent numbers, lines, tax breakdowns and totals.
"""

import csv
import datetime
import io
import itertools
from collections import defaultdict
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook
from rest_framework.test import APIClient

from billing.exports.fec import FEC_COLUMNS
from billing.exports.tasks import export_run_task
from billing.models import CreditNote, CreditNoteLine, Export, ExportKind, Invoice, InvoiceLine, InvoiceTax, Payment
from billing.services.exports import ExportStatus, export_request, export_run, export_stream
from oms.core.errors import ConflictError, PermissionDeniedError, ValidationError
from orders.models import Customer, Order
from orders.tests.factories import ChannelFactory, make_user

pytestmark = pytest.mark.django_db

D = Decimal
DAY = datetime.date(2026, 3, 10)
TZ = timezone.get_current_timezone()
_order_numbers = itertools.count(1)


def _at(day: datetime.date, hour: int = 12) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour), tzinfo=TZ)


def make_orders(n: int, *, channel, day=DAY, paid: bool = True) -> list[Order]:
    customer = Customer.objects.create(email=f"c{Customer.objects.count()}@example.com", first_name="Ann")
    return Order.objects.bulk_create(
        [
            Order(
                number=f"ORD-{next(_order_numbers):06d}",
                channel=channel,
                customer=customer,
                email=customer.email,
                currency="EUR",
                placed_at=_at(day, 9),
                total_net=D("110.00"),
                total_tax=D("20.55"),
                total_gross=D("130.55"),
                amount_paid=D("130.55") if paid else D("0"),
            )
            for _ in range(n)
        ]
    )


def issue_invoices(orders, *, actor, day=DAY, start: int = 1) -> list[Invoice]:
    """Per order: 100.00 net at 20 % + 10.00 net at 5.5 % = 130.55 gross."""
    invoices = Invoice.objects.bulk_create(
        [
            Invoice(
                number=f"INV-2026-{start + i:06d}",
                order=order,
                currency="EUR",
                issued_at=_at(day, 10) + datetime.timedelta(seconds=i),
                due_at=day,
                payment_terms="immediate",
                seller={"name": "Shop SAS"},
                buyer={"name": f"Ann {i}"},
                total_net=D("110.00"),
                total_tax=D("20.55"),
                total_gross=D("130.55"),
                issued_by=actor,
            )
            for i, order in enumerate(orders)
        ]
    )
    lines, taxes = [], []
    for invoice in invoices:
        lines += [
            InvoiceLine(invoice=invoice, position=1, sku="MUG", description="Mug", quantity=1,
                        unit_price=D("120.00"), tax_rate=D("0.20"), net=D("100.00"), tax=D("20.00"),
                        gross=D("120.00")),
            InvoiceLine(invoice=invoice, position=2, sku="BOOK", description="Book", quantity=1,
                        unit_price=D("10.55"), tax_rate=D("0.055"), net=D("10.00"), tax=D("0.55"),
                        gross=D("10.55")),
        ]  # fmt: skip
        taxes += [
            InvoiceTax(invoice=invoice, rate=D("0.20"), base=D("100.00"), tax=D("20.00")),
            InvoiceTax(invoice=invoice, rate=D("0.055"), base=D("10.00"), tax=D("0.55")),
        ]
    InvoiceLine.objects.bulk_create(lines)
    InvoiceTax.objects.bulk_create(taxes)
    return invoices


def credit_mug(invoice: Invoice, *, actor, number: str = "CRN-2026-000001", day=DAY) -> CreditNote:
    """A partial credit note: the mug (100.00 + 20.00 VAT)."""
    note = CreditNote.objects.create(
        number=number,
        invoice=invoice,
        order=invoice.order,
        currency="EUR",
        reason="return",
        issued_at=_at(day, 15),
        buyer=invoice.buyer,
        total_net=D("100.00"),
        total_tax=D("20.00"),
        total_gross=D("120.00"),
        issued_by=actor,
    )
    CreditNoteLine.objects.create(
        credit_note=note, position=1, sku="MUG", description="Mug", quantity=1, unit_price=D("120.00"),
        tax_rate=D("0.20"), net=D("100.00"), tax=D("20.00"), gross=D("120.00"),
    )  # fmt: skip
    return note


def read_stream(kind, *, actor, start=DAY, end=DAY, channel=None) -> bytes:
    stream = export_stream(kind=kind, period_start=start, period_end=end, channel=channel, actor=actor)
    return b"".join(stream.chunks)


def fec_rows(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8")
    assert text.endswith("\r\n")
    return [line.split("\t") for line in text[:-2].split("\r\n")]


def to_decimal(fec_amount: str) -> Decimal:
    assert "." not in fec_amount
    return Decimal(fec_amount.replace(",", "."))


@pytest.fixture
def accountant():
    return make_user("Administrator")


@pytest.fixture
def web():
    return ChannelFactory(code="web")


# --- FEC --------------------------------------------------------------------------------------


def test_fec_has_18_columns_yyyymmdd_dates_and_balanced_entries(accountant, web):
    invoices = issue_invoices(make_orders(3, channel=web), actor=accountant)
    credit_mug(invoices[0], actor=accountant)

    rows = fec_rows(read_stream(ExportKind.FEC, actor=accountant))

    assert tuple(rows[0]) == FEC_COLUMNS and len(FEC_COLUMNS) == 18
    assert all(len(row) == 18 for row in rows)
    body = rows[1:]
    # 3 invoices and 1 credit note: 4 entries; each invoice has 5 lines (411, 706 ×2, 44571 ×2).
    entries = defaultdict(list)
    for row in body:
        entries[row[2]].append(row)
    assert len(entries) == 4
    for number, lines in entries.items():
        debit = sum(to_decimal(line[11]) for line in lines)
        credit = sum(to_decimal(line[12]) for line in lines)
        assert debit == credit, number
        for line in lines:
            for column in (3, 9, 15):  # EcritureDate, PieceDate, ValidDate
                assert line[column] == "20260310"
                datetime.datetime.strptime(line[column], "%Y%m%d")
    first = entries["VE00000001"]
    assert [(line[4], line[11], line[12]) for line in first] == [
        ("411000", "130,55", "0,00"),
        ("706055", "0,00", "10,00"),  # rates in increasing order
        ("445710", "0,00", "0,55"),
        ("706200", "0,00", "100,00"),
        ("445712", "0,00", "20,00"),
    ]
    assert first[0][6] == f"C{invoices[0].order.customer_id}" and first[0][8] == "INV-2026-000001"


def test_fec_credit_note_reverses_the_invoice_lines(accountant, web):
    invoice = issue_invoices(make_orders(1, channel=web), actor=accountant)[0]
    credit_mug(invoice, actor=accountant)

    rows = fec_rows(read_stream(ExportKind.FEC, actor=accountant))[1:]

    credit_lines = [row for row in rows if row[8] == "CRN-2026-000001"]
    assert [(line[4], line[11], line[12]) for line in credit_lines] == [
        ("411000", "0,00", "120,00"),  # the customer is credited
        ("706200", "100,00", "0,00"),  # sales and VAT are debited back
        ("445712", "20,00", "0,00"),
    ]
    assert {line[2] for line in credit_lines} == {"VE00000002"}  # its own entry, after the invoice
    assert credit_lines[0][10].startswith("Avoir CRN-2026-000001")


def test_fec_keeps_to_the_period_and_channel(accountant, web):
    shop = ChannelFactory(code="shop", name="Shop")
    issue_invoices(make_orders(2, channel=web), actor=accountant)
    issue_invoices(make_orders(1, channel=shop), actor=accountant, start=3)
    issue_invoices(make_orders(1, channel=web, day=DAY + datetime.timedelta(days=1)), actor=accountant, start=4,
                   day=DAY + datetime.timedelta(days=1))  # fmt: skip

    rows = fec_rows(read_stream(ExportKind.FEC, actor=accountant, channel=web))[1:]

    assert sorted({row[8] for row in rows}) == ["INV-2026-000001", "INV-2026-000002"]


# --- CSV and XLSX ---------------------------------------------------------------------------------


def test_invoices_csv_lists_invoices_and_credit_notes_in_issue_order(accountant, web):
    invoices = issue_invoices(make_orders(2, channel=web), actor=accountant)
    credit_mug(invoices[0], actor=accountant)

    data = read_stream(ExportKind.INVOICES_CSV, actor=accountant)

    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Type", "Number", "Issued on"]
    assert [row[:2] for row in rows[1:]] == [
        ["invoice", "INV-2026-000001"],
        ["invoice", "INV-2026-000002"],
        ["credit_note", "CRN-2026-000001"],
    ]
    assert rows[1][2:] == [
        "2026-03-10", "", invoices[0].order.number, "web", "Ann 0", "EUR", "110.00", "20.55", "130.55", "2026-03-10",
    ]  # fmt: skip
    assert rows[3][3] == "INV-2026-000001" and rows[3][8:11] == ["-100.00", "-20.00", "-120.00"]


def test_invoices_xlsx_reads_back(accountant, web):
    invoices = issue_invoices(make_orders(2, channel=web), actor=accountant)
    credit_mug(invoices[1], actor=accountant)

    data = read_stream(ExportKind.INVOICES_XLSX, actor=accountant)

    sheet = load_workbook(io.BytesIO(data), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("Type", "Number")
    assert [row[1] for row in rows[1:]] == ["INV-2026-000001", "INV-2026-000002", "CRN-2026-000001"]
    assert rows[1][2] == datetime.datetime(2026, 3, 10)  # a real date cell
    assert [D(str(value)) for value in rows[1][8:11]] == [D("110"), D("20.55"), D("130.55")]
    assert D(str(rows[3][10])) == D("-120")


# --- reconciliation -----------------------------------------------------------------------------


def test_reconciliation_flags_the_order_that_does_not_match(accountant, web):
    matching, unpaid, credited_not_refunded = make_orders(3, channel=web)
    Order.objects.filter(pk=unpaid.pk).update(amount_paid=D("0"))
    invoices = issue_invoices([matching, unpaid, credited_not_refunded], actor=accountant)
    credit_mug(invoices[2], actor=accountant)
    Payment.objects.create(
        order=matching, method="card", provider_reference="pay-1", currency="EUR",
        amount_authorized=D("130.55"), amount_captured=D("130.55"), status="captured",
    )  # fmt: skip

    data = read_stream(ExportKind.RECONCILIATION, actor=accountant)

    rows = {row["Order"]: row for row in csv.DictReader(io.StringIO(data.decode("utf-8-sig")))}
    assert rows[matching.number]["Matches"] == "yes"
    assert rows[matching.number]["Paid"] == rows[matching.number]["Invoiced"] == "130.55"
    assert rows[unpaid.number]["Matches"] == "no"
    assert "invoiced − credited ≠ paid" in rows[unpaid.number]["Differences"]
    assert rows[credited_not_refunded.number]["Matches"] == "no"
    assert rows[credited_not_refunded.number]["Credited"] == "120.00"
    assert rows[credited_not_refunded.number]["Invoiced − credited"] == "10.55"


# --- background exports, permissions, input -----------------------------------------------------


def test_background_export_reaches_100_percent_and_its_file_downloads(
    accountant, web, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    issue_invoices(make_orders(5, channel=web), actor=accountant)

    with django_capture_on_commit_callbacks() as callbacks:
        export = export_request(kind=ExportKind.FEC, period_start=DAY, period_end=DAY, channel=web, actor=accountant)
    assert (export.status, export.progress, export.requested_by) == (ExportStatus.QUEUED, 0, accountant)
    assert len(callbacks) == 1  # the task is queued after commit
    export_run_task(export_id=export.pk)  # what the worker runs

    export.refresh_from_db()
    assert (export.status, export.progress, export.rows) == (ExportStatus.DONE, 100, 5)
    assert export.file.name.endswith("FEC20260310.txt") and export.finished_at is not None

    api = APIClient()
    api.force_authenticate(accountant)
    detail = api.get(reverse("billing-export-detail", args=[export.pk])).json()
    assert detail["status"] == "done" and detail["progress"] == 100 and detail["download_url"]
    response = api.get(reverse("billing-export-file", args=[export.pk]))
    assert response.status_code == 200
    rows = fec_rows(b"".join(response.streaming_content))
    assert len(rows) == 1 + 5 * 5

    client = _cockpit(accountant)
    page = client.get(reverse("admin:billing_export_change", args=[export.pk]))
    assert page.status_code == 200 and reverse("admin:billing_export_file", args=[export.pk]) in page.text
    state = client.get(reverse("admin:billing_export_status", args=[export.pk])).json()
    assert state["status"] == "done" and state["progress"] == 100
    download = client.get(reverse("admin:billing_export_file", args=[export.pk]))
    assert b"".join(download.streaming_content).startswith(b"JournalCode\tJournalLib")


def test_export_run_twice_leaves_the_finished_export(accountant, web, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    issue_invoices(make_orders(1, channel=web), actor=accountant)
    export = export_request(kind=ExportKind.INVOICES_CSV, period_start=DAY, period_end=DAY, actor=accountant)
    first = export_run(export=export)

    again = export_run(export=export)

    assert again.file.name == first.file.name and again.status == ExportStatus.DONE


def test_exporting_needs_the_permission(web):
    clerk = make_user("Warehouse")

    with pytest.raises(PermissionDeniedError):
        export_request(kind=ExportKind.FEC, period_start=DAY, period_end=DAY, actor=clerk)
    with pytest.raises(PermissionDeniedError):
        export_stream(kind=ExportKind.FEC, period_start=DAY, period_end=DAY, actor=clerk)

    assert not Export.objects.exists()
    api = APIClient()
    api.force_authenticate(clerk)
    response = api.post(
        reverse("billing-export-create"), {"kind": "fec", "period_start": "2026-03-01", "period_end": "2026-03-31"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"


def test_a_period_that_ends_before_it_starts_is_refused(accountant):
    with pytest.raises(ValidationError) as error:
        export_request(
            kind=ExportKind.FEC, period_start=DAY, period_end=DAY - datetime.timedelta(days=1), actor=accountant
        )

    assert "period_end" in error.value.extra["fields"]
    assert not Export.objects.exists()


def test_too_large_for_a_direct_download(accountant, web, settings):
    settings.OMS_EXPORT_STREAM_ROWS = 1
    issue_invoices(make_orders(2, channel=web), actor=accountant)

    with pytest.raises(ConflictError) as error:
        export_stream(kind=ExportKind.INVOICES_CSV, period_start=DAY, period_end=DAY, actor=accountant)

    assert error.value.code == "export_too_large"


def test_api_streams_a_small_export_and_queues_a_background_one(accountant, web, django_capture_on_commit_callbacks):
    issue_invoices(make_orders(2, channel=web), actor=accountant)
    api = APIClient()
    api.force_authenticate(accountant)

    response = api.get(
        reverse("billing-export-download"),
        {"kind": "invoices_csv", "period_start": "2026-03-10", "period_end": "2026-03-10", "channel": "web"},
    )
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == 'attachment; filename="invoices-20260310-20260310-web.csv"'
    assert b"INV-2026-000002" in b"".join(response.streaming_content)

    with django_capture_on_commit_callbacks():
        created = api.post(
            reverse("billing-export-create"),
            {"kind": "reconciliation", "period_start": "2026-03-01", "period_end": "2026-03-31"},
            format="json",
        )
    assert created.status_code == 202 and created.json()["status"] == "queued"
    assert Export.objects.get().kind == ExportKind.RECONCILIATION

    bad = api.post(reverse("billing-export-create"), {"kind": "pdf", "period_start": "x"}, format="json")
    assert bad.status_code == 400 and set(bad.json()["extra"]["fields"]) >= {"kind", "period_start", "period_end"}


def _cockpit(user):
    client = Client()
    client.force_login(user)
    return client


def test_cockpit_new_export_downloads_a_small_one_and_queues_a_large_one(
    accountant, web, settings, django_capture_on_commit_callbacks
):
    issue_invoices(make_orders(2, channel=web), actor=accountant)
    client = _cockpit(accountant)
    url = reverse("admin:billing_export_add")
    assert client.get(url).status_code == 200
    form = {"kind": "fec", "period_start": "2026-03-10", "period_end": "2026-03-10", "channel": ""}

    small = client.post(url, form)
    assert small.status_code == 200 and small.streaming
    assert b"".join(small.streaming_content).count(b"\r\n") == 1 + 2 * 5

    settings.OMS_EXPORT_STREAM_ROWS = 1
    with django_capture_on_commit_callbacks():
        large = client.post(url, form)
    export = Export.objects.get()
    assert large.status_code == 302 and large["Location"] == reverse("admin:billing_export_change", args=[export.pk])
    page = client.get(large["Location"])
    assert 'data-status="queued"' in page.text and "oms-export-progress" in page.text
    listing = client.get(reverse("admin:billing_export_changelist"))
    assert listing.status_code == 200 and "<progress" in listing.text
