"""fleetops_common."""
