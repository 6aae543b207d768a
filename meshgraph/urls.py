from django.urls import re_path

from meshgraph import views

NAMESPACE = r"(?P<namespace>[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)"  # a DNS label

urlpatterns = [
    re_path(rf"^{NAMESPACE}\.json$", views.graph_json, name="graph-json"),
    re_path(rf"^{NAMESPACE}/$", views.graph_page, name="graph-page"),
]
