from django.apps import AppConfig


class MeshgraphConfig(AppConfig):
    name = "meshgraph"
    verbose_name = "Mesh graph"
