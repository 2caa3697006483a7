"""`/org/bluez/hciN`: `Adapter1`, `GattManager1` and `LEAdvertisingManager1`
(BlueZ `doc/org.bluez.Adapter.rst`, `org.bluez.GattManager.rst`,
`org.bluez.LEAdvertisingManager.rst`).

Discovery is per D-Bus client, as in bluetoothd: `Discovering` is true while any client has
called `StartDiscovery`; a client starting twice gets `InProgress`, stopping without having
started gets `Failed`; filters are per client and merged (a device is reported when it
matches any client's filter).
"""

from .app import Advertisement, Application, norm_uuid
from .device import Device
from .objects import BluezError, Interface, add_match, method, v

FILTER_KEYS = {"UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData", "Discoverable", "Pattern"}
MAX_ADVERTISEMENTS = 4


class Adapter:
    """The state of one emulated controller; its D-Bus interfaces are below."""

    def __init__(self, world, index, announce=False):
        self.world = world
        self.index = index
        self.name = f"hci{index}"
        self.path = f"/org/bluez/{self.name}"
        n = index + 1
        self.address = f"C0:FF:EE:00:{n >> 8:02X}:{n & 0xFF:02X}"
        self.powered = False
        self.discovery = {}  # sender -> filter dict
        self.apps = {}  # (owner, root) -> Application
        self.ads = {}  # (owner, path) -> Advertisement
        self.devices = {}  # address -> Device
        self.refuse = False
        self._handle = 0x000F
        self.iface = Adapter1(world.registry, self.path, self)
        # Adapters present from the start are not announced (nobody is on the bus yet).
        world.registry.add(self.path, [self.iface, GattManager1(world.registry, self.path, self),
                                       AdvertisingManager1(world.registry, self.path, self)],
                           announce=announce)

    def next_handle(self):
        self._handle += 1
        return self._handle

    @property
    def discovering(self):
        return bool(self.discovery)

    def advertising(self):
        """The connectable advertisement other adapters see, if any (the first registered)."""
        ads = [ad for ad in self.ads.values() if ad.connectable]
        return ads[0] if ads and self.powered else None

    def matches(self, ad, rssi):
        for flt in self.discovery.values():
            uuids = flt.get("UUIDs")
            if uuids and not set(uuids) & set(ad.uuids):
                continue
            if "RSSI" in flt and rssi < flt["RSSI"]:
                continue
            return True
        return False

    def device(self, other):
        """This adapter's Device1 object for adapter `other`, created when first needed."""
        dev = self.devices.get(other.address)
        if dev is None:
            dev = Device(self.world, self, other)
            self.devices[other.address] = dev
        return dev

    def drop_owner(self, owner):
        """A client left the bus: forget its discovery, applications and advertisements."""
        if self.discovery.pop(owner, None) is not None and not self.discovery:
            self.iface.changed(Discovering=v("b", False))
        for key in [k for k in self.apps if k[0] == owner]:
            self.world.app_gone(self, self.apps.pop(key))
        for key in [k for k in self.ads if k[0] == owner]:
            del self.ads[key]


class Adapter1(Interface):
    NAME = "org.bluez.Adapter1"

    def __init__(self, registry, path, adapter):
        super().__init__(registry, path)
        self.a = adapter

    def props(self):
        a = self.a
        return {
            "Address": v("s", a.address), "AddressType": v("s", "public"),
            "Name": v("s", f"bitcraps-emu-{a.index}"), "Alias": v("s", f"bitcraps-emu-{a.index}"),
            "Class": v("u", 0), "Powered": v("b", a.powered), "PowerState": v("s", "on" if a.powered else "off"),
            "Discoverable": v("b", False), "DiscoverableTimeout": v("u", 180),
            "Pairable": v("b", False), "PairableTimeout": v("u", 0),
            "Discovering": v("b", a.discovering), "UUIDs": v("as", []),
            "Modalias": v("s", "usb:v1D6Bp0246d0548"), "Roles": v("as", ["central", "peripheral"]),
        }

    def set_prop(self, name, value, sender):
        if name == "Powered":
            if bool(value) != self.a.powered:
                self.a.powered = bool(value)
                if not self.a.powered:
                    self.a.world.power_off(self.a)
                self.changed(Powered=v("b", self.a.powered), PowerState=v("s", "on" if value else "off"))
            return
        if name in ("Alias", "Discoverable", "Pairable", "DiscoverableTimeout", "PairableTimeout"):
            return
        super().set_prop(name, value, sender)

    @method()
    async def StartDiscovery(self, msg):
        if not self.a.powered:
            raise BluezError("NotReady", "Resource Not Ready")
        if msg.sender in self.a.discovery:
            raise BluezError("InProgress", "Operation already in progress")
        flt = self.a.world.pending_filters.pop((self.a.path, msg.sender), {})
        first = not self.a.discovery
        self.a.discovery[msg.sender] = flt
        if first:
            self.changed(Discovering=v("b", True))
        self.a.world.scan(self.a)

    @method()
    async def StopDiscovery(self, msg):
        if not self.a.powered:
            raise BluezError("NotReady", "Resource Not Ready")
        if self.a.discovery.pop(msg.sender, None) is None:
            raise BluezError("Failed", "No discovery started")
        if not self.a.discovery:
            self.changed(Discovering=v("b", False))

    @method("a{sv}")
    async def SetDiscoveryFilter(self, msg, options):
        flt = {}
        for key, value in options.items():
            if key not in FILTER_KEYS:
                raise BluezError("InvalidArguments", f"unknown filter key {key}")
            flt[key] = value.value
        if "Transport" in flt and flt["Transport"] not in ("auto", "bredr", "le"):
            raise BluezError("InvalidArguments", "Transport")
        if "UUIDs" in flt:
            flt["UUIDs"] = [norm_uuid(u) for u in flt["UUIDs"]]
        if msg.sender in self.a.discovery:
            self.a.discovery[msg.sender] = flt
            self.a.world.scan(self.a)
        else:
            self.a.world.pending_filters[(self.a.path, msg.sender)] = flt

    @method("", "as")
    async def GetDiscoveryFilters(self, msg):
        return [sorted(FILTER_KEYS)]

    @method("o")
    async def RemoveDevice(self, msg, path):
        for address, dev in list(self.a.devices.items()):
            if dev.path == path:
                self.a.world.drop_link(self.a, dev.remote, "removed")
                del self.a.devices[address]
                dev.unpublish()
                return
        raise BluezError("DoesNotExist", "Does Not Exist")


class GattManager1(Interface):
    NAME = "org.bluez.GattManager1"

    def __init__(self, registry, path, adapter):
        super().__init__(registry, path)
        self.a = adapter

    @method("oa{sv}")
    async def RegisterApplication(self, msg, root, options):
        key = (msg.sender, root)
        if key in self.a.apps:
            raise BluezError("AlreadyExists", "Already Exists")
        app = await Application.read(self.a.world.bus, msg.sender, root, self.a.next_handle)
        self.a.apps[key] = app
        # Characteristics without NotifyAcquired notify by changing their Value.
        await add_match(self.a.world.bus,
                        f"type='signal',sender='{msg.sender}',path_namespace='{root}',"
                        "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                        "arg0='org.bluez.GattCharacteristic1'")

    @method("o")
    async def UnregisterApplication(self, msg, root):
        app = self.a.apps.pop((msg.sender, root), None)
        if app is None:
            raise BluezError("DoesNotExist", "Does Not Exist")
        self.a.world.app_gone(self.a, app)


class AdvertisingManager1(Interface):
    NAME = "org.bluez.LEAdvertisingManager1"

    def __init__(self, registry, path, adapter):
        super().__init__(registry, path)
        self.a = adapter

    def props(self):
        return {
            "ActiveInstances": v("y", len(self.a.ads)),
            "SupportedInstances": v("y", MAX_ADVERTISEMENTS - len(self.a.ads)),
            "SupportedIncludes": v("as", ["tx-power", "appearance", "local-name"]),
        }

    @method("oa{sv}")
    async def RegisterAdvertisement(self, msg, path, options):
        key = (msg.sender, path)
        if key in self.a.ads:
            raise BluezError("AlreadyExists", "Already Exists")
        if len(self.a.ads) >= MAX_ADVERTISEMENTS:
            raise BluezError("NotPermitted", "Maximum advertisements reached")
        ad = await Advertisement.read(self.a.world.bus, msg.sender, path)
        self.a.ads[key] = ad
        self.changed(ActiveInstances=v("y", len(self.a.ads)))
        self.a.world.advertise(self.a)

    @method("o")
    async def UnregisterAdvertisement(self, msg, path):
        if self.a.ads.pop((msg.sender, path), None) is None:
            raise BluezError("DoesNotExist", "Does Not Exist")
        self.changed(ActiveInstances=v("y", len(self.a.ads)))
