"""Create a student's namespace when they log in."""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from classroom.namespaces import provision_namespace

log = logging.getLogger(__name__)


@receiver(user_logged_in, dispatch_uid="classroom.provision_namespace_on_login")
def provision_on_login(sender: type, request: HttpRequest | None, user: AbstractBaseUser, **kwargs: object) -> None:
    # Cluster errors are handled inside; this guard is for anything else (say a database hiccup while
    # naming the namespace): logging in must never fail because of the lab environment.
    try:
        provision_namespace(user)
    except Exception:
        log.exception("could not provision the namespace of %s; the login goes on", user.get_username())
