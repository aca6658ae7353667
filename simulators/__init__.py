"""Device simulators that publish the message contract over MQTT."""
