import os

from django.apps import AppConfig


class DemoappConfig(AppConfig):
    name = "demoapp"

    def ready(self):
        if os.environ.get("PROJ_TOUCH_DB"):  # the tests: a connection open before a fork
            from django.db import connection

            connection.ensure_connection()
