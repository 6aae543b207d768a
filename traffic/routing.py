"""Websocket routes of the traffic app (collected by meshconsole.routing)."""

from django.urls import path

from traffic.consumers import TrafficConsumer

websocket_urlpatterns = [
    path("ws/traffic/<str:run_id>/", TrafficConsumer.as_asgi()),
]
