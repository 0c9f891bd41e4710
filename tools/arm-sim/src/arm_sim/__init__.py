"""A faithful simulator of the ARM asset-inventory API, with fault injection."""
