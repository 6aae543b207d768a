"""Websocket routes of the dashboard (collected by meshconsole.routing)."""

from django.urls import path

from dashboard.consumers import DashboardConsumer

websocket_urlpatterns = [
    path("ws/teach/<slug:slug>/", DashboardConsumer.as_asgi()),
]
