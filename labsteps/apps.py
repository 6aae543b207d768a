from django.apps import AppConfig


class LabstepsConfig(AppConfig):
    name = "labsteps"
    verbose_name = "Lab steps"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Broken step content must stop the console at start-up, naming the file and field, not fail
        # in front of a class; loading also warms the cache every request reads.
        from labsteps.steps import all_steps

        all_steps()
