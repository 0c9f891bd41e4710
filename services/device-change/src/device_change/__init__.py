"""device_change."""
