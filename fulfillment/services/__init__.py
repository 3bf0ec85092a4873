"""Every write to shipments and waves, by use case: plan, wave, pick, short pick, pack, label,
dispatch, track, pick up, cancel.

The modules: `planning` (reserved units become parcels), `waves` (waves and pick lists), `picking`
(picks and short picks), `packing` (packing, slips, labels), `dispatch` (hand-over to the carrier,
tracking), `pickup` (store pickup), `cancellation`; `_common` holds the building blocks and the
lock order. Callers import from `fulfillment.services`, which re-exports the public names.
"""

from fulfillment.services._common import CONDITION_MESSAGES, ShipmentTransitionRefused, parcel_summary
from fulfillment.services.cancellation import shipment_cancel, shipments_cancel_for_order
from fulfillment.services.dispatch import (
    RANK,
    TRANSITIONS,
    carrier_webhook_receive,
    shipment_dispatch,
    shipments_dispatch,
    tracking_ingest,
    tracking_poll,
)
from fulfillment.services.packing import shipment_create_label, shipment_pack, shipment_packing_slip_pdf
from fulfillment.services.picking import (
    shipment_confirm_picks,
    shipment_start_picking,
    short_pick_cancel_line,
    short_pick_case_source_open,
    short_pick_delay,
    short_pick_substitute,
)
from fulfillment.services.pickup import (
    pickup_expire,
    pickups_remind_and_expire,
    shipment_hand_over,
    shipment_ready_for_pickup,
)
from fulfillment.services.planning import EXPRESS_WORDS, shipments_plan
from fulfillment.services.waves import wave_create, wave_pick_list_data, wave_print, wave_render_pick_list

__all__ = [
    "CONDITION_MESSAGES",
    "EXPRESS_WORDS",
    "RANK",
    "TRANSITIONS",
    "ShipmentTransitionRefused",
    "carrier_webhook_receive",
    "parcel_summary",
    "pickup_expire",
    "pickups_remind_and_expire",
    "shipment_cancel",
    "shipment_confirm_picks",
    "shipment_create_label",
    "shipment_dispatch",
    "shipment_hand_over",
    "shipment_pack",
    "shipment_packing_slip_pdf",
    "shipment_ready_for_pickup",
    "shipment_start_picking",
    "shipments_cancel_for_order",
    "shipments_dispatch",
    "shipments_plan",
    "short_pick_cancel_line",
    "short_pick_case_source_open",
    "short_pick_delay",
    "short_pick_substitute",
    "tracking_ingest",
    "tracking_poll",
    "wave_create",
    "wave_pick_list_data",
    "wave_print",
    "wave_render_pick_list",
]
