from django.urls import path

from traffic import views

app_name = "traffic"

urlpatterns = [
    path("runs/", views.runs, name="runs"),
    path("runs/<str:run_id>/stop/", views.stop, name="stop"),
    path("runs/<str:run_id>/rate/", views.rate, name="rate"),
    path("runs/<str:run_id>/streams/", views.streams, name="streams"),
    path("runs/<str:run_id>/history/", views.history, name="history"),
    path("stop-all/", views.stop_all, name="stop-all"),
]
