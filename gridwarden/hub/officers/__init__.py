"""Field officers: the roster (:mod:`.roster`), their positions (:mod:`.positions`) and the
three ways positions arrive (OwnTracks over MQTT, OsmAnd/Traccar over HTTP, the officer app)."""
