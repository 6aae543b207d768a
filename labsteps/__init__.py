"""The service-mesh lab: step content, the Apply pipeline (Celery), checks, progress and live events."""
