"""iot-sync: the hub between battery-swap stations, ARM and the customer."""
