"""Classes, memberships and the namespace each student works in."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from classroom.naming import make_join_code


class Classroom(models.Model):
    name = models.CharField(max_length=100, unique=True)
    # Also the value of the `meshconsole.io/class` namespace label, hence the 63-character limit.
    slug = models.SlugField(max_length=63, unique=True)
    join_code = models.CharField(max_length=16, unique=True, default=make_join_code)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        STUDENT = "student"
        INSTRUCTOR = "instructor"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = (models.UniqueConstraint(fields=["user", "classroom"], name="unique_membership"),)
        ordering = ("classroom", "role", "user__username")

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.classroom}"


class StudentNamespace(models.Model):
    """The namespace a student's lab objects live in.

    `created` records that the cluster accepted the namespace at least once; `last_error` says why
    the latest attempt failed (shown on the student's page) and is cleared by a successful one.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="namespace")
    name = models.CharField(max_length=63, unique=True)
    created = models.BooleanField(default=False)
    created_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name
