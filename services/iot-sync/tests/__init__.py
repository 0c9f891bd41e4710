"""iot-sync tests: a package of their own, so module names never clash with another service's."""
