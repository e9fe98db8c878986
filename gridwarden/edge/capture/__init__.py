"""Capture: reading cameras (RTSP, files, the demo's scene), per-camera workers, snapshots and the
evidence ring buffer of encoded packets. Nothing here knows about detection or MQTT."""
