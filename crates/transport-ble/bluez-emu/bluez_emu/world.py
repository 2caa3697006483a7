"""The emulated radio: adapters, what each one's scans see, and the links between them.

Every adapter sees every other adapter's connectable advertisement (no range, no loss);
the RSSI falls with the distance between adapter indices. Test controls (`control.py`)
set the MTU of future links, the latency of every ATT packet, refuse connections to an
adapter, and drop links.
"""

import asyncio
import collections
import logging

from .adapter import Adapter
from .objects import BluezError

LOG = logging.getLogger("bluez-emu")
RESCAN_INTERVAL = 2.0


class World:
    def __init__(self, bus, registry, adapters, mtu):
        self.bus = bus
        self.registry = registry
        self.default_mtu = mtu
        self.pair_mtu = {}
        self.latency = 0.0
        self.links = {}
        self.pending_filters = {}
        self.stats = collections.Counter()
        self.next_index = adapters
        self.adapters = [Adapter(self, i) for i in range(adapters)]
        self.rescan = asyncio.get_running_loop().create_task(self._rescan())

    def adapter(self, path):
        for adapter in self.adapters:
            if adapter.path == path:
                return adapter
        raise BluezError("DoesNotExist", f"no adapter {path}")

    def rssi(self, a, b):
        return -40 - 4 * abs(a.index - b.index)

    # ---- discovery -----------------------------------------------------------------------

    def scan(self, adapter):
        """Reports every advertiser `adapter`'s merged discovery filter lets through."""
        if not adapter.discovering or not adapter.powered:
            return
        for other in self.adapters:
            ad = other.advertising() if other is not adapter else None
            if ad is None:
                continue
            rssi = self.rssi(adapter, other)
            if adapter.matches(ad, rssi):
                adapter.device(other).advertised(ad, rssi)

    def advertise(self, adapter):
        for other in self.adapters:
            if other is not adapter:
                self.scan(other)

    async def _rescan(self):
        # With DuplicateData (btleplug asks for it) BlueZ reports every advertisement again.
        while True:
            await asyncio.sleep(RESCAN_INTERVAL)
            for adapter in self.adapters:
                self.scan(adapter)

    # ---- links ---------------------------------------------------------------------------

    async def connect(self, device):
        a, b = device.adapter, device.remote
        if not a.powered:
            raise BluezError("NotReady", "Resource Not Ready")
        key = frozenset((a.path, b.path))
        if key in self.links:
            return
        await asyncio.sleep(self.latency)
        if b.refuse or b.advertising() is None:
            self.stats["refused"] += 1
            raise BluezError("Failed", "le-connection-abort-by-local")
        if key in self.links:
            return
        from .link import Link

        link = Link(self, a, b, self.pair_mtu.get(key, self.default_mtu))
        self.links[key] = link
        self.stats["connects"] += 1
        a.device(b).set_connected(True)
        b.device(a).set_connected(True)
        asyncio.get_running_loop().create_task(self._resolve(link))

    async def _resolve(self, link):
        await asyncio.sleep(self.latency)
        if link.up:
            link.resolve()

    def drop_link(self, a, b, reason):
        link = self.links.pop(frozenset((a.path, b.path)), None)
        if link is None:
            return False
        LOG.info("link %s <-> %s down: %s", a.name, b.name, reason)
        self.stats["drops"] += 1
        link.close()
        a.device(b).set_connected(False)
        b.device(a).set_connected(False)
        return True

    def power_off(self, adapter):
        for link in list(self.links.values()):
            if adapter in (link.a, link.b):
                self.drop_link(link.a, link.b, "powered off")
        if adapter.discovery:
            adapter.discovery.clear()
            from .objects import v

            adapter.iface.changed(Discovering=v("b", False))

    def app_gone(self, adapter, app):
        for link in self.links.values():
            for session in link.sessions:
                if session.server is adapter:
                    session.app_gone(app)

    def add_adapter(self):
        """A new adapter (a controller plugged in): announced with InterfacesAdded."""
        adapter = Adapter(self, self.next_index, announce=True)
        self.next_index += 1
        self.adapters.append(adapter)
        return adapter

    def remove_adapter(self, adapter):
        """The adapter goes away (unplugged): its links drop, its objects and every other
        adapter's device object for it are removed."""
        for link in list(self.links.values()):
            if adapter in (link.a, link.b):
                self.drop_link(link.a, link.b, "adapter removed")
        self.adapters.remove(adapter)
        for other in self.adapters:
            dev = other.devices.pop(adapter.address, None)
            if dev is not None:
                dev.unpublish()
        self.registry.remove_tree(adapter.path)

    # ---- bus events ----------------------------------------------------------------------

    def owner_gone(self, owner):
        for adapter in self.adapters:
            adapter.drop_owner(owner)
        for link in self.links.values():
            for session in link.sessions:
                for remote in session.remote.values():
                    remote.client_gone(owner)

    def app_value(self, owner, path, value):
        for link in self.links.values():
            for session in link.sessions:
                if any(app.owner == owner for app in session.server.apps.values()):
                    session.app_value(path, value)
