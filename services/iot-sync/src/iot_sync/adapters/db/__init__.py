"""iot-sync's persistence: SQLAlchemy Core on PostgreSQL (psycopg 3) or SQLite."""
