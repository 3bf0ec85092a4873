"""What every demo builder shares: the acting users, the random draws, the clock and the counters."""

import contextlib
import datetime
import random

from django.utils import timezone

from oms.core.actors import get_system_user

try:
    import time_machine
except ImportError:  # a development dependency: without it, the demo's clock is not set back
    time_machine = None

SEED = 2026


@contextlib.contextmanager
def backdated(when: datetime.datetime):
    """Demo only: the clock set back to `when` (time-machine, a development dependency), so that an
    invoice can have been issued weeks ago; without time-machine, the clock stays as it is."""
    if time_machine is None:
        yield
        return
    with time_machine.travel(when, tick=False):
        yield


class Demo:
    """One run of the demo. Every builder draws from `rng` in the command's fixed order, so the data
    set is the same on every machine; `sequence` numbers the orders' external ids and payments."""

    def __init__(self, *, users: dict, api_client, third_party, rng: random.Random):
        self.users = users
        self.api = api_client  # the store front: imports orders, opens returns
        self.third_party = third_party  # the 3PL's WMS: picks, packs and ships its site's parcels
        self.rng = rng
        self.now = timezone.now()
        self.sequence = 0
        self.system = get_system_user()  # automation: the carrier webhook, the pickup expiry job
        self.parcel_rng = random.Random(SEED + 1)  # parcels draw apart: the orders stay as they were
        self.manifest_parcels = 0
