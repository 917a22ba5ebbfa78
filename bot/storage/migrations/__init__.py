"""Alembic migrations of the state database (env.py, versions/); applied by `ohbot db upgrade`."""
