"""iot-sync's REST API (FastAPI, port 8002)."""
