"""The Celery app. Messages only wake workers up: the database holds the work (see DESIGN)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emhub.settings.local")

app = Celery("emhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
