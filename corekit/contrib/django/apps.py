"""The Django app config of ``corekit.contrib.django``."""
from __future__ import annotations

from django.apps import AppConfig


class CorekitConfig(AppConfig):
    name = "corekit.contrib.django"
    label = "corekit"
    verbose_name = "corekit"
    default_auto_field = "django.db.models.BigAutoField"
