"""The cockpit is the Django admin, branded; its home page adds a dashboard (templates/admin/index.html)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

admin.site.site_header = _("OMS cockpit")
admin.site.site_title = _("OMS cockpit")
admin.site.index_title = _("Today")
admin.site.site_url = None  # no public site to go back to from here
# The lists need the width (badges, money, customer): the index page and breadcrumbs navigate.
admin.site.enable_nav_sidebar = False
