"""The dashboard's URLs, mounted at /teach/ (see dashboard/views.py)."""

from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:slug>/", views.class_page, name="class"),
    path("<slug:slug>/matrix.json", views.matrix_json, name="matrix"),
    path("<slug:slug>/export.csv", views.export_csv, name="export-csv"),
    path("<slug:slug>/export.json", views.export_json, name="export-json"),
    path("<slug:slug>/students/<int:user_id>/", views.student_page, name="student"),
    path("<slug:slug>/students/<int:user_id>/runs.json", views.student_runs, name="student-runs"),
]
