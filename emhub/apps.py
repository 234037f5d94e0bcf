from django.apps import AppConfig


class EmhubConfig(AppConfig):
    name = "emhub"
    verbose_name = "Accounts"

    def ready(self):
        from . import sqlite

        sqlite.install()
