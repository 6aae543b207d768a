from django.urls import path

from demo import views

app_name = "demo"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:slug>/", views.projector, name="projector"),
    path("<slug:slug>/state.json", views.state, name="state"),
    path("<slug:slug>/prepare/", views.prepare_view, name="prepare"),
    path("<slug:slug>/faults/", views.fault_create, name="faults"),
    path("<slug:slug>/faults/<int:fault_id>/revert/", views.fault_revert, name="revert"),
]
