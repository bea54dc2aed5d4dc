"""The whole write-back loop over real parts: a work order starts in the MES API -> its target quantity
and recipe (product code) go into the command outbox
-> `edgefab mes run`'s alarm subscriber publishes it -> Mosquitto -> the gateway checks the
allow-list and writes the simulated press's registers over Modbus TCP -> the
answer comes back to the MES. A machine whose edge config has no writable target quantity gets
nothing (the command is marked skipped, with the reason)."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from fastapi.testclient import TestClient

from connectors.modbus.address import Table
from edge_config.loader import load_config
from gateway.runtime import Gateway
from mes_lite.alarms.subscriber import AlarmSubscriber
from mes_lite.api.app import create_app
from mes_lite.db import make_engine, session_factory
from mes_lite.settings import MesSettings
from simulators.factory import DEMO_MACHINES, SimulatedFactory
from tests.integration.gateway_harness import wait_until
from tests.integration.test_mes_api import import_demo_plant


def recipe_on(bank) -> str:  # type: ignore[no-untyped-def]
    words = bank.get_registers(Table.HOLDING_REGISTER, 99, 4)
    return b"".join(w.to_bytes(2, "big") for w in words).rstrip(b"\0").decode(errors="replace")


CONFIG = """
site: {enterprise: acme, site: dongguan}
gateway: {name: gw-orders}
devices:
  - name: press01
    area: stamping
    line: line1
    protocol: modbus
    connection: {host: 127.0.0.1, port: PORT, unit: 1}
    poll: 200ms
    tags:
      state: {address: hr40001, role: state, map: {0: idle, 1: running, 2: starved, 3: blocked, 4: planned_stop, 5: fault}}
      target_quantity: {address: hr40020, type: uint32, unit: parts, writable: true, min: 0, max: 1000000}
      recipe: {address: hr40100, type: string, length: 4, writable: true}
sinks:
  mqtt: {url: "MQTT_URL"}
buffer: {path: buffer.db}
"""


async def test_a_started_work_order_sets_the_target_quantity_on_the_machine(
    mosquitto, mes_templates, tmp_path: Path
) -> None:
    db_url, headers = mes_templates.sqlite_copy(tmp_path / "mes.db")
    press = [m for m in DEMO_MACHINES if m.name == "press01"]
    async with SimulatedFactory(seed=2, speed=1.0, modbus_port=0, machines=press) as factory:
        assert factory.modbus is not None
        bank = factory.modbus.banks[factory.unit_of("press01")]
        text = textwrap.dedent(CONFIG).replace("PORT", str(factory.modbus_port)).replace("MQTT_URL", mosquitto.url)
        (tmp_path / "site.yaml").write_text(text)
        config = load_config(tmp_path / "site.yaml")
        gateway = Gateway(config, health_port=-1, config_dir=tmp_path)
        ready = asyncio.Event()
        task = asyncio.create_task(gateway.run(install_signal_handlers=False, ready=ready))
        engine = make_engine(db_url)
        subscriber = AlarmSubscriber(session_factory(engine), mosquitto.url, "acme", "dongguan", config=config)
        try:
            await asyncio.wait_for(ready.wait(), 10)
            writeback = gateway.companions[-1]
            await wait_until(lambda: writeback.channel.connected, 10, "the gateway's command connection")  # type: ignore[attr-defined]
            with TestClient(create_app(MesSettings(database_url=db_url)), headers=headers["supervisor"]) as client:
                import_demo_plant(client)
                commands = {}
                for number, machine in (("WO-T-1", "press01"), ("WO-T-2", "press02")):
                    body = {"number": number, "product": "BRK-100", "planned_qty": 1500,
                            "work_center": f"dongguan/stamping/line1/{machine}"}  # fmt: skip
                    order = client.post("/api/work-orders", json=body).json()
                    for action in ("release", "start"):
                        response = client.post(f"/api/work-orders/{order['id']}/transitions", json={"action": action})
                        assert response.status_code == 200, response.text
                    commands[machine] = order["id"]
                # `edgefab mes run` starts after the orders: the outbox waited for it in the database
                # (and the API's SQLite transactions above do not race its writes; see the report)
                subscriber.start()
                assert await asyncio.to_thread(subscriber.connected.wait, 10)

                await wait_until(
                    lambda: bank.get_registers(Table.HOLDING_REGISTER, 19, 2) == [0, 1500], 10, "the register write"
                )
                await wait_until(lambda: recipe_on(bank) == "BRK-100", 10, "the recipe write")
                with engine.connect() as connection:
                    rows = connection.exec_driver_sql(
                        "SELECT work_order_id, topic, request_id FROM mes_commands ORDER BY id"
                    ).all()
                request = {(row[0], row[1].rsplit("/", 1)[-1]): row[2] for row in rows}
                assert len(request) == 4  # two setpoints per started order

                def status(machine: str, tag: str) -> dict:
                    return client.get(f"/api/alarms/commands/{request[(commands[machine], tag)]}").json()

                await wait_until(lambda: status("press01", "recipe")["status"] == "done", 10, "the gateway's answers")
                done = status("press01", "target_quantity")
                assert (done["status"], done["answer"]["result"], done["answer"]["new_value"]) == (
                    "done",
                    "written",
                    1500,
                )
                assert done["answer"]["user"] == "supervisor"
                for tag in ("target_quantity", "recipe"):
                    skipped = status("press02", tag)
                    assert skipped["status"] == "skipped"
                    assert (
                        skipped["answer"]["reason"]
                        == "no machine acme/dongguan/stamping/line1/press02 in the edge config"
                    )
                assert factory.modbus.write_count == 2  # press02's commands never left the MES
        finally:
            subscriber.stop()
            engine.dispose()
            gateway.request_stop()
            await asyncio.wait_for(task, 20)
