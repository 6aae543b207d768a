"""Classes, their members, and each student's Kubernetes namespace."""
