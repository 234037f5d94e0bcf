from django.apps import AppConfig


class EmhubConfig(AppConfig):
    name = "emhub"
    verbose_name = "Accounts"
