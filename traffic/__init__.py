"""Background HTTP traffic for the lab: an open-loop generator, its windows, worker, control API and stream."""
