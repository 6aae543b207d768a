"""Project URLs. Apps mount their own URLconfs here; auth pages use Django's views."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from classroom import views as classroom_views

urlpatterns = [
    path("", classroom_views.home, name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("join/", classroom_views.join, name="join"),
    path("classroom/", include("classroom.urls")),
    path("lab/", include("labsteps.urls")),
    path("traffic/", include("traffic.urls")),
    path("graph/", include("meshgraph.urls")),
    path("demo/", include("demo.urls")),
    path("teach/", include("dashboard.urls")),
    path("admin/", admin.site.urls),
]
