"""Every write to an order goes through here: one service per action.

The package is split by use case (intake, lifecycle, payments, allocation, shipping, line changes,
cancellation, holds, annotations); this module re-exports every service. Each service, in one
transaction: locks the order first (orders.locks, in the lock order of oms.core.locks), checks the
actor's permission explicitly (oms.core.permissions), runs the FSM transition, saves with the history user and reason,
and writes a typed OrderEvent (published to the outbox in the same transaction). Views, admin
actions, API endpoints, Celery tasks and commands all call these functions. What the apps above
must do in the same transaction (plan or cancel parcels, record the payment, invoice) they do as
subscribers of orders.hooks, never by being imported here.
"""

from orders.services._common import (  # noqa: F401
    CONDITION_MESSAGES,
    MAX_LINES,
    MAX_QUANTITY,
    MAX_TEXT,
    TERMINAL_OR_SHIPPED,
    derive_fulfillment_status,
    derive_payment_status,
)
from orders.services.allocation import order_reallocate  # noqa: F401
from orders.services.annotations import order_add_note, order_change_address, order_tag, order_untag  # noqa: F401
from orders.services.api_clients import api_client_save  # noqa: F401
from orders.services.cancellation import order_can_cancel, order_cancel  # noqa: F401
from orders.services.holds import order_clear_fraud, order_hold, order_release_hold  # noqa: F401
from orders.services.intake import OrderIntake, intake_parse, order_create  # noqa: F401
from orders.services.lifecycle import (  # noqa: F401
    order_accept,
    order_accept_on_terms,
    order_approve,
    order_complete,
    order_flag_for_review,
    order_start_preparation,
    order_submit,
    orders_complete_due,
)
from orders.services.line_changes import (  # noqa: F401
    EXCHANGE_STATES,
    order_add_exchange_line,
    order_cancel_lines,
    order_delay_lines,
    order_substitute_line,
)
from orders.services.payments import order_mark_paid, order_record_refund  # noqa: F401
from orders.services.shipping import order_mark_delivered, order_record_shipment  # noqa: F401
