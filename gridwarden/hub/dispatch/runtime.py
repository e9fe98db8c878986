"""The background parts of officers and dispatch in a serving hub: the OwnTracks consumer
(positions over MQTT) and the dispatch loop, started and stopped together."""

from __future__ import annotations

from gridwarden.hub.dispatch.loop import DispatchCollector, DispatchLoop
from gridwarden.hub.dispatch.wiring import FieldServices
from gridwarden.hub.officers.owntracks import OwnTracksConsumer
from gridwarden.hub.settings import HubSettings


class FieldWorkers:
    def __init__(self, field: FieldServices, settings: HubSettings, mqtt_password: str | None) -> None:
        self.owntracks = OwnTracksConsumer(
            db=field.db,
            mqtt_host=settings.mqtt_host,
            mqtt_port=settings.mqtt_port,
            group=settings.mqtt_group,
            client_id=f"{settings.mqtt_client_id or 'hub-' + settings.mqtt_group}-owntracks",
            username=settings.mqtt_username,
            password=mqtt_password,
        )
        self.loop = DispatchLoop(field.dispatch)
        self.collector = DispatchCollector(field.dispatch, self.owntracks.stats)

    def start(self) -> None:
        self.owntracks.start()
        self.loop.start()

    def stop(self) -> None:
        self.loop.stop()
        self.owntracks.stop()
