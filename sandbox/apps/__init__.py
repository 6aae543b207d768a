"""Workload apps the sandbox runs for container images.

Nothing in this package may import sandbox internals: each app is a plain aiohttp application built
from an environment mapping, so the same code runs inside the sandbox and as a real container image.
"""
