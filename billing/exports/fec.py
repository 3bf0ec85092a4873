"""The accounting journal as a French FEC (Fichier des écritures comptables, article A47 A-1 LPF).

18 columns in this order, tab-separated, one header line; dates YYYYMMDD; amounts with a comma
as decimal separator and no thousands separator. One entry (EcritureNum) per document:

    invoice      debit  411 customer (CompAuxNum: the customer)       = gross
                 credit 706 sales, one line per tax rate               = base at that rate
                 credit 44571 VAT collected, one line per taxed rate   = tax at that rate
    credit note  the same lines, debit and credit swapped

The customer line is the sum of the other lines, so every entry balances by construction; the
document's own total_gross is that same sum when it was issued consistently.
"""

import datetime
from collections.abc import Iterable, Iterator
from decimal import Decimal

from billing.exports.formatting import amount, clean_text, local_date

FEC_COLUMNS = (
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
)
ZERO = Decimal("0")


def fec_filename(siren: str, closing_date: datetime.date) -> str:
    """The name the tax administration expects: <SIREN>FEC<closing date YYYYMMDD>.txt."""
    return f"{siren}FEC{closing_date:%Y%m%d}.txt"


def fec_amount(value: Decimal) -> str:
    """1234.5 → "1234,50" (the value is already rounded to the currency)."""
    return f"{value:.2f}".replace(".", ",")


def rate_key(rate: Decimal) -> str:
    """0.2 → "20", 0.055 → "5.5", 0 → "0": the keys of OMS_ACCOUNTING's account maps."""
    percent = (rate * 100).normalize()
    return f"{percent:f}"


def fec_lines(documents: Iterable, accounting: dict) -> Iterator[str]:
    """The FEC file as lines of text (CRLF), from billing.exports.sources.journal_documents.

    Built with plain string concatenation: this loop runs five times per invoice.
    """
    journal_code = clean_text(accounting["journal_code"])
    journal = f"{journal_code}\t{clean_text(accounting['journal_label'])}\t"
    books_currency = accounting.get("currency", "EUR")
    customer_account = f"{accounting['customer_account']}\t{clean_text(accounting['customer_account_label'])}\t"
    sales_label = clean_text(accounting["sales_account_label"])
    vat_label = clean_text(accounting["vat_account_label"])
    aux_prefix = accounting.get("customer_aux_prefix", "C")
    accounts: dict[Decimal, tuple[str, str]] = {}  # rate → (sales account + label, VAT account + label)

    def accounts_for(rate: Decimal) -> tuple[str, str]:
        if rate not in accounts:
            key = rate_key(rate)
            sales = accounting["sales_accounts"].get(key, accounting["sales_account_default"])
            vat = accounting["vat_accounts"].get(key, accounting["vat_account_default"])
            accounts[rate] = (f"{sales}\t{sales_label}\t\t", f"{vat}\t{vat_label}\t\t")
        return accounts[rate]

    yield "\t".join(FEC_COLUMNS) + "\r\n"
    for sequence, doc in enumerate(documents, start=1):
        day = f"{local_date(doc.issued_at):%Y%m%d}"
        number = clean_text(doc.number)
        customer = clean_text(doc.customer)
        kind = "Avoir" if doc.kind == "credit_note" else "Facture"
        head = f"{journal}{journal_code}{sequence:08d}\t{day}\t"
        piece = f"\t{number}\t{day}\t{clean_text(f'{kind} {number} {customer}'.strip())}\t"
        foreign = doc.currency != books_currency
        # (account, label, aux num, aux label up to PieceRef) and the amount, customer line first.
        lines = []
        total = ZERO
        for rate, base, tax in doc.taxes:
            sales, vat = accounts_for(rate)
            base = amount(base, doc.currency)
            tax = amount(tax, doc.currency)
            if base:
                lines.append((sales, base))
            if tax:
                lines.append((vat, tax))
            total += base + tax
        lines.insert(0, (f"{customer_account}{aux_prefix}{doc.customer_id}\t{customer}", total))
        customer_debits = doc.kind != "credit_note"
        for index, (account, value) in enumerate(lines):
            # Invoice: the customer line (first) is a debit and the others credits; a credit note swaps them.
            text = fec_amount(value)
            debit_credit = f"{text}\t0,00" if (index == 0) == customer_debits else f"0,00\t{text}"
            currency = f"{text}\t{doc.currency}" if foreign else "\t"
            yield f"{head}{account}{piece}{debit_credit}\t\t\t{day}\t{currency}\r\n"
