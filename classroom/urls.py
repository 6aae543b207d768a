"""Class management, mounted at /classroom/ (see classroom/views.py); the join page is /join/."""

from django.urls import path

from classroom import views

app_name = "classroom"

urlpatterns = [
    path("", views.index, name="index"),
    path("new/", views.create, name="create"),
    path("<slug:slug>/", views.detail, name="detail"),
    path("<slug:slug>/roster/", views.roster, name="roster"),
    path("<slug:slug>/students/<int:user_id>/password/", views.password, name="password"),
    path("<slug:slug>/students/<int:user_id>/reset-namespace/", views.reset_namespace, name="reset-namespace"),
]
