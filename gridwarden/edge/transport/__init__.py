"""Transport: everything that leaves or enters the edge over the network: the durable outbox, the
MQTT publisher, hub -> edge commands (config, resend requests, snapshot requests), evidence uploads."""
