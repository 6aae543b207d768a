from django.urls import re_path

from meshgraph.consumers import GraphConsumer
from meshgraph.urls import NAMESPACE

websocket_urlpatterns = [re_path(rf"^ws/graph/{NAMESPACE}/$", GraphConsumer.as_asgi())]
