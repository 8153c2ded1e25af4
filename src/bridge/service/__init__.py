"""The long-running service: a webhook receiver (Flask under gunicorn) and job workers
(huey: SQLite on one machine, Redis across machines), sharing one pure pipeline."""
