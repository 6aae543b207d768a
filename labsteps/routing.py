"""Websocket routes of the lab (collected by meshconsole.routing)."""

from django.urls import path

from labsteps.consumers import LabConsumer

websocket_urlpatterns = [
    path("ws/lab/", LabConsumer.as_asgi()),
]
