"""fleetops_devstack."""
