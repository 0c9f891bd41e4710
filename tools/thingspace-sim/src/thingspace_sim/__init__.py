"""thingspace_sim."""
