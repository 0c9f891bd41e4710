"""iot-sync's HTTP adapter for ARM, the asset inventory."""
