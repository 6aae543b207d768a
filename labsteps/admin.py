from django.contrib import admin

from labsteps.models import Attempt, Progress


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "step_id", "kind", "status", "created", "finished")
    list_filter = ("kind", "status", "step_id", "classroom")
    search_fields = ("user__username", "namespace")
    readonly_fields = ("created", "started", "finished", "heartbeat", "task_id", "deliveries")


@admin.register(Progress)
class ProgressAdmin(admin.ModelAdmin):
    list_display = ("user", "step_id", "state", "attempts", "updated")
    list_filter = ("state", "step_id", "classroom")
    search_fields = ("user__username",)
