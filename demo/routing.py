"""Websocket routes of the demo (collected by meshconsole.routing)."""

from django.urls import path

from demo.consumers import DemoConsumer

websocket_urlpatterns = [
    path("ws/demo/<slug:slug>/", DemoConsumer.as_asgi()),
]
