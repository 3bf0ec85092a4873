#!/usr/bin/env python
import os
import sys


def main():
    # Production unless the caller chose other settings: the development settings (`make run`) sign with
    # a public key, so no process falls back to them (it refuses to start without a real SECRET_KEY).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oms.settings.production")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
