"""Customer notifications leaving iot-sync: the webhook adapter of the `Notifier` port."""
