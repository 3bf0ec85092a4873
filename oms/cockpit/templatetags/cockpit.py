from django import template

from oms.cockpit.dashboard import cockpit_dashboard as build_dashboard

register = template.Library()


@register.simple_tag(takes_context=True)
def cockpit_dashboard(context):
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return None
    return build_dashboard(user=request.user)
