from django.core.management.base import BaseCommand, CommandError

from inventory.selectors import stock_ledger_drift


class Command(BaseCommand):
    help = "Recompute every stock row from the ledger; exit non-zero and list the rows that drifted."

    def handle(self, *args, **options):
        drift = stock_ledger_drift()
        for row in drift:
            self.stdout.write(
                f"DRIFT {row['sku']}@{row['location']}: on hand {row['on_hand']} vs ledger {row['ledger_on_hand']}, "
                f"reserved {row['reserved']} vs ledger {row['ledger_reserved']}"
            )
        if drift:
            raise CommandError(f"{len(drift)} stock row(s) differ from the ledger.")
        self.stdout.write("Stock matches the ledger.")
