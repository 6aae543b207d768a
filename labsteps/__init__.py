"""The service-mesh lab: step content, and later the step engine, Apply pipeline, checks and progress."""
