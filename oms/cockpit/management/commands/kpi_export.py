from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from oms.cockpit.kpis import iso_week_bounds, iso_week_label, kpis_weekly_csv, last_complete_week


class Command(BaseCommand):
    help = "Write the weekly KPI CSV (the cockpit's download) for an ISO week, to stdout or a file."

    def add_arguments(self, parser):
        parser.add_argument("--week", help="ISO week, e.g. 2026-W47 (default: last complete week)")
        parser.add_argument("--output", help="file to write (default: stdout)")

    def handle(self, *args, week: str | None = None, output: str | None = None, **options):
        week = week or last_complete_week()
        try:
            start, _end = iso_week_bounds(week)
        except ValueError as error:
            raise CommandError(str(error)) from error
        text = kpis_weekly_csv(iso_week_label(start))
        if output:
            Path(output).write_text(text, encoding="utf-8", newline="")
            self.stderr.write(f"Wrote {output} ({iso_week_label(start)}).")
        else:
            self.stdout.write(text, ending="")
