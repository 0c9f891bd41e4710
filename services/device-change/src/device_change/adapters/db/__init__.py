"""Persistence of device-change: SQLAlchemy Core on PostgreSQL or SQLite."""
