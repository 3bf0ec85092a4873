"""Invoices and credit notes: numbering without gaps under concurrency, per-order and per-shipment
invoicing, credit notes never above what is left, payment terms and overdue, the printed PDFs."""

import datetime
import io
import re
from decimal import Decimal

import pytest
from django.db import transaction
from pypdf import PdfReader
from rest_framework.test import APIClient

from billing import documents
from billing.models import BillingPolicy, CreditNote, Invoice, InvoiceTrigger, PaymentTerms
from billing.services import invoices
from billing.tasks import invoice_auto
from billing.tests.conftest import make_finance_user
from fulfillment import services as fulfillment
from fulfillment.models import Shipment
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from oms.cockpit import roles
from oms.core.actors import get_system_user
from oms.core.errors import ApplicationError, ConflictError, PermissionDeniedError, ValidationError
from oms.core.testing import run_together
from orders import services as orders
from orders.models import Channel, Order
from orders.tests.factories import make_user, order_payload

ONE_MUG = [{"sku": "MUG-1", "name": "Mug", "quantity": 1, "unit_price": "12.00", "tax_rate": "0.20"}]
NUMBER = re.compile(r"^INV-(\d{4})-(\d{6})$")


def _policy(trigger=InvoiceTrigger.ORDER, terms=PaymentTerms.IMMEDIATE, **owner):
    owner = owner or {"channel": Channel.objects.get(code="web")}
    return BillingPolicy.objects.create(trigger=trigger, payment_terms=terms, **owner)


def _confirmed_order(**overrides) -> Order:
    order, _ = orders.order_create(actor=get_system_user(), **order_payload(**overrides))
    return order


def _ship(shipment, actor):
    fulfillment.shipment_confirm_picks(
        shipment=shipment, actor=actor, picked={line.pk: line.quantity for line in shipment.lines.all()}
    )
    fulfillment.shipment_pack(shipment=shipment, actor=actor)
    return fulfillment.shipment_dispatch(shipment=shipment, actor=actor)


def _pdf_text(pdf: bytes) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"[\u00a0\u202f]", " ", text)


# --- per order ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_order_invoice_snapshots_lines_taxes_parties_and_adds_up_to_the_order(world, finance):
    _policy()
    order = _confirmed_order()

    invoice = invoices.invoice_issue(order=order, actor=finance)

    year = invoice.issued_at.year
    assert NUMBER.match(invoice.number) and invoice.number.startswith(f"INV-{year}-")
    lines = [(line.sku, line.quantity, line.tax_rate, line.gross) for line in invoice.lines.all()]
    assert lines == [
        ("MUG-1", Decimal("2.000"), Decimal("0.2000"), Decimal("24.0000")),
        ("TEE-1", Decimal("1.000"), Decimal("0.2000"), Decimal("25.0000")),
        ("BOOK-1", Decimal("1.000"), Decimal("0.0550"), Decimal("10.5500")),
        ("", Decimal("1.000"), Decimal("0.2000"), Decimal("4.9000")),
    ]
    assert invoice.lines.last().description == "Shipping (standard)"
    # Totals are the lines' sums and equal the order's; the breakdown per rate adds up too.
    assert (invoice.total_net, invoice.total_tax, invoice.total_gross) == (
        order.total_net,
        order.total_tax,
        order.total_gross,
    )
    taxes = [(t.rate, t.base, t.tax) for t in invoice.taxes.all()]
    assert [rate for rate, _b, _t in taxes] == [Decimal("0.0550"), Decimal("0.2000")]
    assert sum(t for _r, _b, t in taxes) == invoice.total_tax
    assert sum(b for _r, b, _t in taxes) == invoice.total_net
    assert taxes[0][1:] == (Decimal("10.0000"), Decimal("0.5500"))  # 10.55 incl. 5.5 % VAT
    # Seller from the settings, buyer from the order; immediate terms: due on the day.
    assert invoice.seller["vat_number"] and invoice.seller["siret"]
    assert invoice.buyer["name"] == "Ann Lee" and invoice.buyer["country"] == "FR"
    assert invoice.due_at == invoice.issued_at.date() and invoice.payment_terms == PaymentTerms.IMMEDIATE
    event = order.events.get(type=invoices.EVENT_INVOICE_ISSUED)
    assert event.actor == finance and event.payload["invoice"] == invoice.number

    # Issued means final: saving it again is refused (corrections are credit notes).
    invoice.total_gross = Decimal("1.00")
    with pytest.raises(ConflictError) as frozen:
        invoice.save()
    assert frozen.value.code == "document_immutable"
    line = invoice.lines.first()
    with pytest.raises(ConflictError):
        line.save()
    invoice.refresh_from_db()
    assert invoice.total_gross == order.total_gross

    # The same units are never invoiced twice.
    with pytest.raises(ConflictError) as refused:
        invoices.invoice_issue(order=order, actor=finance)
    assert refused.value.code == "nothing_to_invoice"
    assert Invoice.objects.filter(order=order).count() == 1


@pytest.mark.django_db
def test_issuing_needs_the_permission_and_a_confirmed_order(world, finance):
    order = _confirmed_order()
    with pytest.raises(PermissionDeniedError):
        invoices.invoice_issue(order=order, actor=make_user())
    unpaid = _confirmed_order(payment={"status": "unpaid"})
    with pytest.raises(ConflictError) as refused:
        invoices.invoice_issue(order=unpaid, actor=finance)
    assert refused.value.code == "order_not_invoiceable"
    assert not Invoice.objects.exists()


@pytest.mark.django_db
def test_a_rolled_back_issue_gives_its_number_back(world, finance):
    _policy()
    first, second = _confirmed_order(), _confirmed_order()

    with pytest.raises(RuntimeError):
        with transaction.atomic():
            lost = invoices.invoice_issue(order=first, actor=finance)
            raise RuntimeError("the issuing transaction fails after the number was drawn")

    kept = invoices.invoice_issue(order=second, actor=finance)
    assert kept.number == lost.number
    assert not Invoice.objects.filter(order=first).exists()


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_issues_get_consecutive_numbers_without_gap_or_duplicate():
    make_two_locations(mug=40)
    finance = make_finance_user()
    _policy()
    order_ids = [_confirmed_order(lines=ONE_MUG).pk for _ in range(20)]

    results = run_together(20, lambda i: invoices.invoice_issue(order=order_ids[i], actor=finance).number)

    assert not [r for r in results if isinstance(r, Exception)], results
    values = sorted(int(NUMBER.match(number).group(2)) for number in results)
    assert values == list(range(values[0], values[0] + 20))
    assert Invoice.objects.count() == 20 and len(set(results)) == 20
    # Each order got exactly its own invoice.
    assert sorted(Invoice.objects.values_list("order_id", flat=True)) == sorted(order_ids)


# --- per shipment --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_per_shipment_invoicing_of_two_parcels_gives_two_invoices_of_exactly_each_parcel(world, finance):
    order = prepared_order()
    paris, lyon = Shipment.objects.filter(order=order).order_by("location__priority")

    paris = _ship(paris, world.warehouse)
    first = invoices.invoice_issue(order=order, actor=finance, shipment=paris)
    # Lyon has not shipped yet: nothing of it is invoiced.
    with pytest.raises(ConflictError) as refused:
        invoices.invoice_issue(order=order, actor=finance, shipment=Shipment.objects.get(pk=lyon.pk))
    assert refused.value.code == "shipment_not_shipped"
    lyon = _ship(lyon, world.warehouse)
    second = invoices.invoice_issue(order=order, actor=finance, shipment=lyon)

    def parcel(shipment):
        return sorted((line.order_line.sku, line.quantity) for line in shipment.lines.all())

    def billed(invoice):
        return sorted((line.sku, int(line.quantity)) for line in invoice.lines.all() if line.order_line_id)

    assert billed(first) == parcel(paris) == [("BOOK-1", 1), ("MUG-1", 2)]
    assert billed(second) == parcel(lyon) == [("TEE-1", 1)]
    # The shipping fee is on the first invoice only; together they bill the whole order.
    assert [line.description for line in first.lines.filter(order_line__isnull=True)] == ["Shipping (standard)"]
    assert not second.lines.filter(order_line__isnull=True).exists()
    order.refresh_from_db()
    assert first.total_gross + second.total_gross == order.total_gross
    assert (first.shipment, second.shipment) == (paris, lyon)
    # A parcel is invoiced once; nothing else is left.
    with pytest.raises(ConflictError) as again:
        invoices.invoice_issue(order=order, actor=finance, shipment=paris)
    assert again.value.code == "already_invoiced"
    with pytest.raises(ConflictError):
        invoices.invoice_issue(order=order, actor=finance)


@pytest.mark.django_db
def test_the_automatic_invoicing_follows_the_policy_and_issues_once(world, finance):
    # The channel invoices per order, this customer per shipment: the customer's policy wins.
    _policy(trigger=InvoiceTrigger.ORDER)
    order = prepared_order()
    _policy(trigger=InvoiceTrigger.SHIPMENT, terms=PaymentTerms.NET_30, channel=None, customer=order.customer)
    assert invoices.billing_policy_for(order) == (InvoiceTrigger.SHIPMENT, PaymentTerms.NET_30)
    assert invoice_auto(order_id=order.pk) == []  # confirmation: not this customer's trigger

    paris = _ship(Shipment.objects.filter(order=order).order_by("location__priority").first(), world.warehouse)
    numbers = invoice_auto(shipment_id=paris.pk)
    assert invoice_auto(shipment_id=paris.pk) == []  # a redelivered task issues nothing more

    invoice = Invoice.objects.get(number=numbers[0])
    assert invoice.shipment == paris and invoice.issued_by.username == "system"
    assert invoice.due_at == invoice.issued_at.date() + datetime.timedelta(days=30)


def test_due_dates_of_each_payment_terms():
    day = datetime.date(2026, 1, 20)
    due = {terms: invoices.invoice_due_date(terms=terms, issued_on=day) for terms in PaymentTerms.values}
    assert due == {
        "immediate": datetime.date(2026, 1, 20),
        "net_15": datetime.date(2026, 2, 4),
        "net_30": datetime.date(2026, 2, 19),
        "net_45_eom": datetime.date(2026, 3, 31),  # 20 Jan + 45 days = 6 Mar, then end of March
        "eom_30": datetime.date(2026, 3, 2),  # 31 Jan + 30 days
    }


# --- overdue ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_invoice_is_overdue_once_its_due_date_passed_while_the_order_is_not_paid(world, finance):
    _policy(terms=PaymentTerms.NET_30)
    order = _confirmed_order(payment={"status": "unpaid"})
    order.customer.payment_terms_days = 30
    order.customer.save(update_fields=["payment_terms_days"])
    order = orders.order_accept_on_terms(order=order, actor=finance)
    invoice = invoices.invoice_issue(order=order, actor=finance)
    due = invoice.due_at
    after = due + datetime.timedelta(days=1)

    assert not invoices.invoice_is_overdue(invoice, today=due)
    assert invoices.invoice_is_overdue(invoice, today=after)
    assert list(invoices.invoice_list(overdue=True, today=after)) == [invoice]
    assert list(invoices.invoice_list(overdue=True, today=due)) == []

    orders.order_mark_paid(order=order, actor=finance, amount="30.00")
    assert invoices.invoice_is_overdue(invoice, today=after)  # partly paid is still overdue
    orders.order_mark_paid(order=order, actor=finance)
    assert not invoices.invoice_is_overdue(invoice, today=after)
    assert list(invoices.invoice_list(overdue=False, today=after)) == [invoice]


# --- credit notes -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_credit_notes_by_lines_by_amount_and_never_above_what_is_left(world, finance):
    _policy()
    order = _confirmed_order()
    invoice = invoices.invoice_issue(order=order, actor=finance)
    mug = invoice.lines.get(sku="MUG-1")

    # One of the two mugs came back.
    by_line = invoices.credit_note_issue(invoice=invoice, actor=finance, reason="return", lines={mug.pk: 1})
    assert re.match(r"^CRN-\d{4}-\d{6}$", by_line.number)
    assert [(line.sku, line.quantity, line.gross) for line in by_line.lines.all()] == [
        ("MUG-1", Decimal("1.000"), Decimal("12.0000"))
    ]
    assert (by_line.total_net, by_line.total_tax, by_line.total_gross) == (
        Decimal("10.0000"),
        Decimal("2.0000"),
        Decimal("12.0000"),
    )
    # Goodwill of 10.00 spread over the invoice's two rates pro rata of their gross.
    goodwill = invoices.credit_note_issue(invoice=invoice, actor=finance, reason="goodwill", amount="10.00")
    spread = {line.tax_rate: line.gross for line in goodwill.lines.all()}
    assert spread == {Decimal("0.0550"): Decimal("1.6400"), Decimal("0.2000"): Decimal("8.3600")}
    assert goodwill.total_gross == Decimal("10.00")
    assert goodwill.total_net + goodwill.total_tax == goodwill.total_gross
    assert invoices.invoice_remaining(invoice) == Decimal("64.45") - 12 - 10

    # More than what is left, or a unit credited twice, is refused and nothing is written.
    with pytest.raises(ValidationError) as too_much:
        invoices.credit_note_issue(invoice=invoice, actor=finance, reason="goodwill", amount="42.46")
    assert too_much.value.code == "credit_exceeds_invoice"
    with pytest.raises(ValidationError) as twice:
        invoices.credit_note_issue(invoice=invoice, actor=finance, reason="return", lines={mug.pk: 2})
    assert f"lines.{mug.pk}" in twice.value.extra["fields"]
    assert CreditNote.objects.filter(invoice=invoice).count() == 2

    # The rest in full: the invoice is fully credited, and no further credit note passes.
    rest = invoices.credit_note_issue(invoice=invoice, actor=finance, reason="seller_cancellation")
    assert rest.total_gross == Decimal("42.45") and invoices.invoice_remaining(invoice) == 0
    with pytest.raises(ConflictError):
        invoices.credit_note_issue(invoice=invoice, actor=finance, reason="goodwill", amount="0.01")
    numbers = [int(n[-6:]) for n in CreditNote.objects.order_by("pk").values_list("number", flat=True)]
    assert numbers == list(range(numbers[0], numbers[0] + 3))
    event = order.events.filter(type=invoices.EVENT_CREDIT_NOTE_ISSUED).last()
    assert event.payload == {
        "credit_note": rest.number,
        "invoice": invoice.number,
        "reason": "seller_cancellation",
        "total_gross": "42.45",
    }


@pytest.mark.django_db
def test_a_full_credit_note_mirrors_the_invoice(world, finance):
    _policy()
    invoice = invoices.invoice_issue(order=_confirmed_order(), actor=finance)
    full = invoices.credit_note_issue(invoice=invoice, actor=finance, reason="seller_cancellation")
    assert [(line.sku, line.quantity, line.gross) for line in full.lines.all()] == [
        (line.sku, line.quantity, line.gross) for line in invoice.lines.all()
    ]
    assert (full.total_net, full.total_tax, full.total_gross) == (
        invoice.total_net,
        invoice.total_tax,
        invoice.total_gross,
    )
    with pytest.raises(PermissionDeniedError):
        invoices.credit_note_issue(invoice=invoice, actor=make_user(), reason="goodwill", amount="1")


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_credit_notes_of_sixty_percent_only_one_passes():
    make_two_locations()
    finance = make_finance_user()
    _policy()
    invoice = invoices.invoice_issue(order=_confirmed_order(), actor=finance)
    sixty_percent = (invoice.total_gross * Decimal("0.6")).quantize(Decimal("0.01"))

    results = run_together(
        2,
        lambda _i: invoices.credit_note_issue(
            invoice=invoice.pk, actor=finance, reason="goodwill", amount=sixty_percent
        ),
    )

    passed = [r for r in results if isinstance(r, CreditNote)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(passed) == 1 and len(refused) == 1
    assert isinstance(refused[0], ApplicationError) and refused[0].code == "credit_exceeds_invoice"
    assert CreditNote.objects.filter(invoice=invoice).count() == 1
    assert invoices.invoice_remaining(invoice) == invoice.total_gross - sixty_percent


# --- printed documents -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_invoice_and_credit_note_pdfs_in_english_and_french(world, finance):
    _policy(terms=PaymentTerms.NET_30)
    english = invoices.invoice_issue(order=_confirmed_order(), actor=finance)
    french = invoices.invoice_issue(order=_confirmed_order(locale="fr"), actor=finance)

    text = _pdf_text(documents.invoice_pdf(english))
    for expected in (
        "Invoice",
        english.number,
        english.order.number,
        "OMS Demo SAS",
        "FR40123456789",  # the seller's VAT number
        "SIRET 12345678900017",
        "Ann Lee",
        "1 rue de la Paix",
        "75002 Paris",
        "France",
        "Mug",
        "MUG-1",
        "€24.00",
        "5.5%",
        "€0.55",  # the 5.5 % VAT of the book
        "Total including VAT",
        "€64.45",
        "Net 30 days",
        english.due_at.strftime("%B"),
        "IBAN",
    ):
        assert expected in text, expected

    text = _pdf_text(documents.invoice_pdf(french))
    for expected in (french.number, "64,45 €", "24,00 €", "5,5 %", "0,55 €", "Ann Lee"):
        assert expected in text, expected
    months = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre"]
    months += ["novembre", "décembre"]
    assert months[french.due_at.month - 1] in text  # dates in French

    credit_note = invoices.credit_note_issue(
        invoice=english, actor=finance, reason="goodwill", amount="5.00", note="Late parcel"
    )
    text = _pdf_text(documents.credit_note_pdf(credit_note))
    for expected in ("Credit note", credit_note.number, f"Corrects invoice {english.number}", "€5.00", "Goodwill"):
        assert expected in text, expected
    french_note = invoices.credit_note_issue(invoice=french, actor=finance, reason="goodwill", amount="5.00")
    text = _pdf_text(documents.credit_note_pdf(french_note))
    assert french_note.number in text and french.number in text and "5,00 €" in text


# --- API ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_issues_lists_reads_prints_and_credits(world, finance, django_assert_max_num_queries):
    order = _confirmed_order()
    _policy()
    client = APIClient()
    client.force_authenticate(finance)

    issued = client.post(f"/api/v1/billing/orders/{order.number}/invoices/", {}, format="json")
    assert issued.status_code == 201, issued.json()
    body = issued.json()
    number = body["number"]
    assert body["total_gross"] == "64.45" and body["remaining"] == "64.45" and len(body["lines"]) == 4
    assert [tax["rate"] for tax in body["taxes"]] == ["0.0550", "0.2000"] and body["overdue"] is False
    again = client.post(f"/api/v1/billing/orders/{order.number}/invoices/", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "nothing_to_invoice"

    for _ in range(3):
        invoices.invoice_issue(order=_confirmed_order(), actor=finance)
    with django_assert_max_num_queries(6):
        listed = client.get("/api/v1/billing/invoices/", {"channel": "web", "overdue": "false"})
    assert listed.status_code == 200 and len(listed.json()["results"]) == 4
    assert client.get("/api/v1/billing/invoices/", {"channel": "nope"}).status_code == 400
    assert client.get("/api/v1/billing/invoices/", {"order": order.number}).json()["results"][0]["number"] == number

    pdf = client.get(f"/api/v1/billing/invoices/{number}/pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and number in _pdf_text(pdf.content)
    assert client.get("/api/v1/billing/invoices/INV-1999-000001/").status_code == 404

    mug = next(line for line in body["lines"] if line["sku"] == "MUG-1")
    credited = client.post(
        f"/api/v1/billing/invoices/{number}/credit-notes/",
        {"reason": "return", "lines": {str(mug["id"]): "1"}},
        format="json",
    )
    assert credited.status_code == 201, credited.json()
    assert credited.json()["total_gross"] == "12.00" and credited.json()["invoice"] == number
    too_much = client.post(
        f"/api/v1/billing/invoices/{number}/credit-notes/", {"reason": "goodwill", "amount": "60.00"}, format="json"
    )
    assert too_much.status_code == 400 and too_much.json()["code"] == "credit_exceeds_invoice"
    assert client.get(f"/api/v1/billing/invoices/{number}/").json()["remaining"] == "52.45"
    note_pdf = client.get(credited.json()["pdf_url"])
    assert note_pdf.status_code == 200 and credited.json()["number"] in _pdf_text(note_pdf.content)

    stranger = APIClient()
    stranger.force_authenticate(make_user())
    assert stranger.get("/api/v1/billing/invoices/").status_code == 403
    assert stranger.post(f"/api/v1/billing/orders/{order.number}/invoices/", {}, format="json").status_code == 403


# --- cockpit --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_cockpit_lists_invoices_prints_them_and_issues_a_credit_note(world, client, django_assert_max_num_queries):
    _policy(terms=PaymentTerms.NET_30)
    admin_user = make_user(roles.ADMINISTRATOR)
    client.force_login(admin_user)
    invoice = invoices.invoice_issue(order=_confirmed_order(), actor=admin_user)
    for _ in range(3):
        invoices.invoice_issue(order=_confirmed_order(), actor=admin_user)

    with django_assert_max_num_queries(20):
        page = client.get("/admin/billing/invoice/", {"channel": "web", "period": "this_year", "overdue": "no"})
    assert page.status_code == 200 and invoice.number in page.content.decode()
    assert client.get("/admin/billing/invoice/", {"overdue": "yes"}).status_code == 200

    detail = client.get(f"/admin/billing/invoice/{invoice.pk}/change/")
    assert detail.status_code == 200
    assert "Issue credit note" in detail.content.decode() and "invoice.pdf" in detail.content.decode()
    pdf = client.get(f"/admin/billing/invoice/{invoice.pk}/invoice.pdf")
    assert pdf.status_code == 200 and invoice.number in _pdf_text(b"".join(pdf.streaming_content))

    form_url = f"/admin/billing/invoice/{invoice.pk}/credit-note/"
    assert client.get(form_url).status_code == 200
    refused = client.post(form_url, {"reason": "goodwill", "amount": "999.00"})
    assert refused.status_code == 200 and not CreditNote.objects.exists()
    done = client.post(form_url, {"reason": "goodwill", "amount": "5.00", "note": "Late parcel"})
    note = CreditNote.objects.get()
    assert done.status_code == 302 and done["Location"].endswith(f"/admin/billing/creditnote/{note.pk}/change/")
    assert (note.total_gross, note.issued_by, note.note) == (Decimal("5.00"), admin_user, "Late parcel")
    assert client.get(f"/admin/billing/creditnote/{note.pk}/change/").status_code == 200
    assert client.get("/admin/billing/creditnote/").status_code == 200
    assert client.get("/admin/billing/payment/").status_code == 200
    # Nothing can be edited or deleted.
    assert client.post(f"/admin/billing/invoice/{invoice.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Invoice.objects.filter(pk=invoice.pk).exists()
