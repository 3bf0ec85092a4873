"""Roles are groups of permissions, defined here and applied by a migration and `sync_roles`.

Each entry is "app_label.codename", or "app_label.view_*" / "app_label.*" for every matching
permission of that app. Money and irreversible actions (refunds, cancellations after payment, hold
releases, stock adjustments) have their own permission and only the roles that own them get it.
"""

from fnmatch import fnmatch

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions

from orders.choices import API_CLIENT_GROUPS, ApiClientRole

SUPPORT_L1 = "Support L1"
SUPPORT_L2 = "Support L2"
WAREHOUSE = "Warehouse"
FINANCE = "Finance"
FINANCE_MANAGER = "Finance manager"
ADMINISTRATOR = "Administrator"
API_STORE_FRONT = API_CLIENT_GROUPS[ApiClientRole.STORE_FRONT]
API_3PL = API_CLIENT_GROUPS[ApiClientRole.THREE_PL]
API_PAYMENT_PROVIDER = API_CLIENT_GROUPS[ApiClientRole.PAYMENT_PROVIDER]
API_ERP = API_CLIENT_GROUPS[ApiClientRole.ERP]
API_READ_ONLY = API_CLIENT_GROUPS[ApiClientRole.READ_ONLY]
API_ROLES = list(API_CLIENT_GROUPS.values())

# Groups of roles that no longer exist: sync_roles deletes them (their members keep no permission
# from them). "API client" held every integration's rights at once; the migration that split it
# (cockpit 0006) made each of its members a store front API client first.
RETIRED_ROLES = ["API client"]

_VIEW_ORDERS = ["orders.view_*"]
# What every API client role but the payment provider reads: orders, their parcels and returns.
# Not the cases, customers, rules or waves (the cockpit's work).
_API_READ = ["orders.view_order", "fulfillment.view_shipment", "returns.view_returnrequest"]

_SUPPORT_L1 = [
    *_VIEW_ORDERS,
    "inventory.view_product",
    "inventory.view_stockitem",
    "inventory.view_sourcingdecision",
    "orders.import_order",
    "orders.submit_order",
    "orders.add_note",
    "orders.tag_order",
    "orders.place_hold",
    "orders.change_address_order",
    "orders.cancel_order",
    "fulfillment.view_*",
    "fulfillment.resolve_short_pick",
    "returns.view_*",
    "returns.add_returnrequest",
    "returns.cancel_returnrequest",
    "billing.view_*",
    "billing.request_refund",
    # Cases: the support queues at level 1.
    "orders.work_support_case",
    "orders.open_case",
    "orders.escalate_case",
    "orders.resolve_case",
]

ROLES: dict[str, list[str]] = {
    SUPPORT_L1: _SUPPORT_L1,
    SUPPORT_L2: [
        *_SUPPORT_L1,
        "orders.cancel_paid_order",
        "orders.release_hold",
        "orders.flag_order",
        "orders.accept_review_order",
        "orders.approve_order",
        "orders.change_customer",
        "integrations.view_*",
        "inventory.view_*",
        "integrations.replay_outboxmessage",
        "fulfillment.cancel_shipment",
        "fulfillment.track_shipment",
        "integrations.change_notification",
        "returns.approve_returnrequest",
        "returns.refuse_returnrequest",
        "returns.close_returnrequest",
        "orders.work_l2_case",
        "orders.work_fraud_case",
        "orders.work_integration_case",
        "orders.release_fraud_hold",
        "orders.merge_customer",
        "orders.add_automationrule",
        "orders.change_automationrule",
        "orders.add_slapolicy",
        "orders.change_slapolicy",
    ],
    WAREHOUSE: [
        *_VIEW_ORDERS,
        "inventory.view_*",
        "inventory.receive_stock",
        "inventory.add_cyclecount",
        "inventory.change_cyclecount",
        "inventory.add_incomingsupply",
        "inventory.change_incomingsupply",
        "orders.start_preparation_order",
        "orders.ship_order",
        "orders.deliver_order",
        "orders.add_note",
        "orders.place_hold",
        "fulfillment.view_*",
        "fulfillment.add_wave",
        "fulfillment.print_wave",
        "fulfillment.pick_shipment",
        "fulfillment.pack_shipment",
        "fulfillment.dispatch_shipment",
        "fulfillment.track_shipment",
        "fulfillment.hand_over_shipment",
        "fulfillment.cancel_shipment",
        # Inspecting a return restocks, credits and asks for the refund (finance approves it).
        "returns.view_*",
        "returns.receive_returnrequest",
        "returns.inspect_returnrequest",
        "billing.issue_invoice",
        "billing.issue_creditnote",
        "billing.request_refund",
        "orders.work_warehouse_case",
        "orders.escalate_case",
        "orders.resolve_case",
    ],
    FINANCE: [
        *_VIEW_ORDERS,
        "orders.record_payment_order",
        "orders.accept_on_terms_order",
        "orders.complete_order",
        "orders.add_note",
        "orders.place_hold",
        "integrations.view_*",
        "billing.view_*",
        "billing.issue_invoice",
        "billing.issue_creditnote",
        "billing.export_invoice",
        "billing.request_refund",
        "billing.approve_refund",
        "billing.add_export",
        "billing.add_dispute",
        "billing.change_dispute",
        "returns.view_*",
        "returns.close_returnrequest",
        "orders.work_finance_case",
        "orders.escalate_case",
        "orders.resolve_case",
    ],
    FINANCE_MANAGER: [
        *_VIEW_ORDERS,
        "inventory.view_*",
        # Stock value changes: count variances and manual adjustments.
        "inventory.approve_cyclecount",
        "inventory.adjust_stock",
        "orders.record_payment_order",
        "orders.accept_on_terms_order",
        "orders.complete_order",
        "orders.add_note",
        "orders.place_hold",
        "orders.release_hold",
        "orders.cancel_order",
        "orders.cancel_paid_order",
        "orders.approve_order",
        "integrations.view_*",
        "billing.*",
        "returns.view_*",
        "returns.close_returnrequest",
        "orders.work_finance_case",
        "orders.work_fraud_case",
        "orders.work_l2_case",
        "orders.release_fraud_hold",
        "orders.escalate_case",
        "orders.resolve_case",
    ],
    ADMINISTRATOR: [
        "orders.*",
        "inventory.*",
        "fulfillment.*",
        "returns.*",
        "billing.*",
        "integrations.*",
        "core.*",
        "auth.*",
        "authtoken.*",
    ],
    # API clients, one role per job. None holds stock adjustment or the cancellation of a paid order;
    # only the payment provider records payments. Channels limit the orders each reaches (ApiClient).
    API_STORE_FRONT: [
        *_API_READ,
        "inventory.view_product",
        "inventory.view_stockitem",
        "billing.view_invoice",
        "billing.view_creditnote",
        "orders.import_order",
        "orders.submit_order",
        "orders.change_address_order",
        # Unpaid orders only: canceling a paid one is orders.cancel_paid_order, which no API role holds.
        "orders.cancel_order",
        "orders.add_note",
        "orders.tag_order",
        "returns.add_returnrequest",
    ],
    API_3PL: [
        *_API_READ,
        "inventory.view_product",
        "inventory.view_stockitem",
        "inventory.receive_stock",
        "inventory.add_cyclecount",
        "inventory.change_cyclecount",
        "orders.start_preparation_order",
        "orders.ship_order",
        "orders.deliver_order",
        "fulfillment.pick_shipment",
        "fulfillment.pack_shipment",
        "fulfillment.dispatch_shipment",
        "fulfillment.track_shipment",
        "fulfillment.hand_over_shipment",
        "returns.receive_returnrequest",
        "returns.inspect_returnrequest",
        # Inspecting a return credits the resellable units and asks for their refund (finance
        # approves it), as the warehouse role does: returns' services act with the inspector's rights.
        "billing.issue_invoice",
        "billing.issue_creditnote",
        "billing.request_refund",
    ],
    API_PAYMENT_PROVIDER: [
        "orders.view_order",
        "orders.record_payment_order",
        "billing.add_paymentevent",
    ],
    API_ERP: [
        *_API_READ,
        "billing.view_invoice",
        "billing.view_creditnote",
        "billing.view_refund",
        "billing.export_invoice",
    ],
    API_READ_ONLY: [
        *_API_READ,
        "inventory.view_product",
        "inventory.view_stockitem",
        "billing.view_invoice",
        "billing.view_creditnote",
        "billing.view_refund",
    ],
}


def resolve(patterns: list[str], available: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """(app_label, codename) pairs matched by the patterns."""
    wanted = set()
    for pattern in patterns:
        app_pattern, code_pattern = pattern.split(".", 1)
        wanted |= {(a, c) for a, c in available if a == app_pattern and fnmatch(c, code_pattern)}
    return wanted


def sync_roles(group_model, permission_model) -> dict[str, int]:
    """Create the groups and set each one's permissions to exactly its role. Returns counts."""
    permissions = {
        (p.content_type.app_label, p.codename): p for p in permission_model.objects.select_related("content_type")
    }
    counts = {}
    group_model.objects.filter(name__in=RETIRED_ROLES).delete()
    for name, patterns in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        chosen = [permissions[key] for key in sorted(resolve(patterns, list(permissions)))]
        group.permissions.set(chosen)
        counts[name] = len(chosen)
    return counts


def migrate_roles(apps, schema_editor):
    """RunPython body of the roles migrations: permissions for every app, then the groups."""
    # Permissions are normally created after the whole migrate run (post_migrate): create them now,
    # for every app, so that the groups get them on a fresh database too.
    for app_config in global_apps.get_app_configs():
        if app_config.models_module is None:
            app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
    sync_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))
