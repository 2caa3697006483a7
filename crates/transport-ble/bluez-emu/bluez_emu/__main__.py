"""Entry point: `python3 -m bluez_emu --adapters 3 [--bus-config bus.conf]`.

With `--bus-config` it starts its own `dbus-daemon` with that config (and stops it when it
exits); otherwise it joins the bus at `--address` or `DBUS_SYSTEM_BUS_ADDRESS`. Prints
`READY <bus address> <adapter paths>` once `org.bluez` is owned, and exits on SIGTERM,
SIGINT, or when its standard input reaches end of file (the test process that started it
is gone).
"""

import argparse
import asyncio
import logging
import os
import signal
import sys

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

from . import compat
from .control import Emulator1
from .objects import Registry, add_match
from .world import World


async def main():
    parser = argparse.ArgumentParser(prog="bluez_emu")
    parser.add_argument("--address", default=os.environ.get("DBUS_SYSTEM_BUS_ADDRESS"))
    parser.add_argument("--adapters", type=int, default=2)
    parser.add_argument("--mtu", type=int, default=517)
    parser.add_argument("--bus-config")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="bluez-emu: %(message)s", stream=sys.stderr)
    daemon = None
    if args.bus_config:
        daemon = await asyncio.create_subprocess_exec(
            "dbus-daemon", f"--config-file={args.bus_config}", "--print-address", "--nofork",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        args.address = (await daemon.stdout.readline()).decode().strip()
    try:
        await serve(args)
    finally:
        if daemon is not None and daemon.returncode is None:
            daemon.terminate()
            await daemon.wait()


async def serve(args):
    if not args.address:
        sys.exit("bluez_emu: no bus address (--address or DBUS_SYSTEM_BUS_ADDRESS)")
    compat.install()
    bus = await MessageBus(bus_address=args.address, bus_type=BusType.SYSTEM,
                           negotiate_unix_fd=True).connect()
    registry = Registry(bus)
    world = World(bus, registry, args.adapters, args.mtu)
    registry.add("/org/bitcraps/emulator", [Emulator1(registry, "/org/bitcraps/emulator", world)],
                 managed=False)

    def on_signal(msg):
        if msg.message_type is not MessageType.SIGNAL or msg.sender == bus.unique_name:
            return False
        if msg.member == "NameOwnerChanged" and msg.sender == "org.freedesktop.DBus":
            name, _old, new = msg.body
            if name.startswith(":") and not new:
                world.owner_gone(name)
        elif msg.member == "PropertiesChanged" and msg.body and msg.body[0] == "org.bluez.GattCharacteristic1":
            if "Value" in msg.body[1]:
                world.app_value(msg.sender, msg.path, msg.body[1]["Value"].value)
        return False

    bus.add_message_handler(on_signal)
    bus.add_message_handler(registry.handle)
    # Value changes of applications' characteristics are watched per application (see
    # adapter.py): a match on every PropertiesChanged would bring back all of our own.
    await add_match(bus, "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'")
    await bus.request_name("org.bluez")
    print(f"READY {args.address} " + " ".join(a.path for a in world.adapters), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(sys.stdin.fileno(), 512) else None)
    gone = loop.create_task(bus.wait_for_disconnect())
    await asyncio.wait([loop.create_task(stop.wait()), gone], return_when=asyncio.FIRST_COMPLETED)
    if not gone.done():
        bus.disconnect()
    try:
        await gone
    except Exception:  # the bus went away first: nothing left to clean up
        pass


if __name__ == "__main__":
    asyncio.run(main())
