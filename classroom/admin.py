from django.contrib import admin

from classroom.models import Classroom, Membership, StudentNamespace


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "join_code", "created_at")
    prepopulated_fields = {"slug": ("name",)}  # noqa: RUF012 (Django reads it as a dict)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "classroom", "role")
    list_filter = ("classroom", "role")


@admin.register(StudentNamespace)
class StudentNamespaceAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created", "created_at")
    readonly_fields = ("created_at", "last_error")
