import socket

from celery import shared_task

from .services import heartbeat_record, heartbeats_prune


@shared_task(name="emhub.tasks.record_heartbeat", ignore_result=True)
def record_heartbeat() -> None:
    heartbeat_record(hostname=socket.gethostname())


@shared_task(name="emhub.tasks.prune_heartbeats", ignore_result=True)
def prune_heartbeats() -> None:
    heartbeats_prune()
