"""`/org/bluez/hciN/dev_XX_XX_XX_XX_XX_XX`: `Device1` (BlueZ `doc/org.bluez.Device.rst`).

A device object is one adapter's view of another: created when a scan sees the other's
advertisement, or when the other connects to this adapter. `Connect` brings up an LE link
(one per pair of adapters: a second `Connect` from the other side reuses it, as on a real
controller); `Disconnect` on either side's object drops it.
"""

from .objects import BluezError, Interface, method, v


class Device:
    def __init__(self, world, adapter, remote):
        self.world = world
        self.adapter = adapter
        self.remote = remote
        self.path = f"{adapter.path}/dev_{remote.address.replace(':', '_')}"
        self.name = None
        self.uuids = []
        self.rssi = None
        self.connected = False
        self.resolved = False
        self.published = False
        self.iface = Device1(world.registry, self.path, self)

    def publish(self):
        if not self.published:
            self.published = True
            self.world.registry.add(self.path, [self.iface])

    def unpublish(self):
        if self.published:
            self.published = False
            self.world.registry.remove_tree(self.path)

    def advertised(self, ad, rssi):
        """A scan saw `ad`: create the object or report what changed (RSSI on every report)."""
        changed = {}
        if ad.name != self.name:
            self.name = ad.name
            if ad.name is not None:
                changed["Name"] = v("s", ad.name)
                changed["Alias"] = v("s", ad.name)
        if ad.uuids != self.uuids:
            self.uuids = list(ad.uuids)
            changed["UUIDs"] = v("as", self.uuids)
        self.rssi = rssi
        changed["RSSI"] = v("n", rssi)
        if not self.published:
            self.publish()
        else:
            self.iface.changed(**changed)

    def set_connected(self, connected):
        if connected == self.connected:
            return
        self.connected = connected
        self.publish()
        if not connected and self.resolved:
            self.resolved = False
            self.iface.changed(ServicesResolved=v("b", False))
        self.iface.changed(Connected=v("b", connected))

    def set_resolved(self):
        if self.connected and not self.resolved:
            self.resolved = True
            self.iface.changed(ServicesResolved=v("b", True))


class Device1(Interface):
    NAME = "org.bluez.Device1"

    def __init__(self, registry, path, device):
        super().__init__(registry, path)
        self.d = device

    def props(self):
        d = self.d
        props = {
            "Address": v("s", d.remote.address), "AddressType": v("s", "public"),
            "Alias": v("s", d.name or d.remote.address.replace(":", "-")),
            "Paired": v("b", False), "Bonded": v("b", False), "Trusted": v("b", False),
            "Blocked": v("b", False), "LegacyPairing": v("b", False),
            "Connected": v("b", d.connected), "ServicesResolved": v("b", d.resolved),
            "UUIDs": v("as", d.uuids), "Adapter": v("o", d.adapter.path),
            "ManufacturerData": v("a{qv}", {}), "ServiceData": v("a{sv}", {}),
            "WakeAllowed": v("b", False),
        }
        if d.name is not None:
            props["Name"] = v("s", d.name)
        if d.rssi is not None:
            props["RSSI"] = v("n", d.rssi)
        return props

    def set_prop(self, name, value, sender):
        if name in ("Trusted", "Blocked", "Alias", "WakeAllowed"):
            return
        super().set_prop(name, value, sender)

    @method()
    async def Connect(self, msg):
        await self.d.world.connect(self.d)

    @method()
    async def Disconnect(self, msg):
        # BlueZ answers Disconnect on an unconnected device with success.
        self.d.world.drop_link(self.d.adapter, self.d.remote, "local disconnect")

    @method("s")
    async def ConnectProfile(self, msg, uuid):
        raise BluezError("NotSupported", "LE devices have no profiles to connect")

    @method("s")
    async def DisconnectProfile(self, msg, uuid):
        raise BluezError("NotSupported", "LE devices have no profiles to disconnect")

    @method()
    async def Pair(self, msg):
        raise BluezError("AuthenticationFailed", "pairing is not emulated")

    @method()
    async def CancelPairing(self, msg):
        raise BluezError("DoesNotExist", "Does Not Exist")
