"""The lab's URLs, mounted at /lab/ (see labsteps/views.py for what each answers)."""

from django.urls import path

from labsteps import views

app_name = "labsteps"

urlpatterns = [
    path("", views.index, name="index"),
    path("api/attempts/<int:attempt_id>", views.attempt_detail, name="attempt"),
    path("api/progress", views.progress, name="progress"),
    path("api/traffic-target", views.traffic_target, name="traffic-target"),
    path("<slug:step_id>/", views.step, name="step"),
    path("<slug:step_id>/apply", views.apply, name="apply"),
    path("<slug:step_id>/check", views.check, name="check"),
    path("<slug:step_id>/reset", views.reset, name="reset"),
    path("<slug:step_id>/solution", views.solution, name="solution"),
    path("<slug:step_id>/hint/<int:n>", views.hint, name="hint"),
]
