"""The instructor dashboard at /teach/: a class's live progress matrix, one student's drill-down, exports."""
