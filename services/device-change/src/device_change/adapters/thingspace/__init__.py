"""ThingSpace Connectivity Management: the carrier adapter."""
