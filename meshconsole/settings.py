"""Django settings for MeshConsole, driven by the environment.

Defaults suit a laptop (SQLite and a private Redis under `var/`); production sets DATABASE_URL,
REDIS_URL, SECRET_KEY and ALLOWED_HOSTS. Environment variables read here:

  SECRET_KEY, DEBUG, ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, DATABASE_URL, DB_CONN_MAX_AGE, REDIS_URL,
  KUBECONFIG, SECURE_COOKIES, SECURE_PROXY_SSL, SECURE_HSTS_SECONDS, SECURE_SSL_REDIRECT,
  STATIC_ROOT, MESHCONSOLE_VAR_DIR, LOG_LEVEL, CELERY_TASK_TIME_LIMIT, LAB_ATTEMPT_STALE_SECONDS.
"""

from __future__ import annotations

import os
from pathlib import Path

from meshconsole import redis_embedded
from meshconsole.config import (
    celery_broker_url,
    database_config,
    env_bool,
    env_int,
    env_list,
    load_or_create_secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# Runtime state (database, secret key, embedded Redis, demo credentials); gitignored.
VAR_DIR = Path(os.environ.get("MESHCONSOLE_VAR_DIR") or BASE_DIR / "var").resolve()

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or load_or_create_secret_key(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "classroom",
    "labsteps",
    "traffic",
    "meshgraph",
    "demo",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",  # static files before sessions/auth: no login needed
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every view needs a logged-in user unless it is marked @login_not_required (login page, admin login).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "meshconsole.urls"
ASGI_APPLICATION = "meshconsole.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": database_config(
        os.environ.get("DATABASE_URL"),
        sqlite_path=VAR_DIR / "db.sqlite3",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# JSON endpoints (the lab's Apply/Check/Reset) answer a CSRF failure with JSON, pages with Django's page.
CSRF_FAILURE_VIEW = "labsteps.views.csrf_failure"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Security: cookies are Secure unless explicitly turned off (plain-HTTP classroom LAN) or DEBUG.
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
if env_bool("SECURE_PROXY_SSL", False):  # behind a TLS-terminating proxy that sets X-Forwarded-Proto
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Static files: ServeStatic serves them from the ASGI app without reading whole files into memory.
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")  # collectstatic output
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "traffic.finders.PlotlyFinder",  # vendor/plotly/plotly.min.js from the installed `plotly` package
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed, precompressed files need `collectstatic`; in DEBUG files come straight from the finders.
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "servestatic.storage.CompressedManifestStaticFilesStorage",
    },
}

# --- Redis: one server for the Celery broker and the channel layer.
REDIS_URL = os.environ.get("REDIS_URL") or redis_embedded.ensure_running(VAR_DIR)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": REDIS_URL,
                    # redis-py 8 defaults to a 5 s socket timeout, which kills idle subscribers, and to a
                    # 100-connection pool that raises when a whole class connects at once.
                    "socket_timeout": None,
                    "max_connections": 1000,
                }
            ],
            # Pub/sub channel names are global across Redis databases; keep ours apart.
            "prefix": "meshconsole",
        },
    }
}

# --- Celery (read by meshconsole/celery.py with the CELERY_ namespace).
CELERY_BROKER_URL = celery_broker_url(REDIS_URL)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Tasks (apply, check, reset) are idempotent server-side applies, so a task whose worker died is
# redelivered rather than lost.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Unacked tasks are redelivered after the visibility timeout; limits stay far below it so a running
# task is never handed to a second worker.
CELERY_VISIBILITY_TIMEOUT = 3600
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = int(CELERY_TASK_TIME_LIMIT * 0.9)  # leaves the task time to clean up
CELERY_TASK_IGNORE_RESULT = True  # state lives in our own models
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE

# --- Lab attempts (labsteps): a running attempt whose heartbeat is older than this is taken over
# (its task is sent again) or failed, so no attempt stays "running" after its worker died.
LAB_ATTEMPT_STALE_SECONDS = env_int("LAB_ATTEMPT_STALE_SECONDS", 15)

# --- Cluster: a kubeconfig path (colon-separated list allowed). Unset: in-cluster config when running in
# a pod, else ~/.kube/config, like kubectl.
KUBECONFIG = os.environ.get("KUBECONFIG") or None
# Seconds for (connect, read) on each Kubernetes API call; someone is usually waiting for the answer.
KUBERNETES_TIMEOUT = (3.0, 10.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # Checks and the traffic generator send many requests; one log line each would drown the worker's log.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
