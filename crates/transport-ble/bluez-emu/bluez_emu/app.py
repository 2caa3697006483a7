"""What a local application registered with BlueZ: GATT applications and advertisements.

`GattManager1.RegisterApplication` makes BlueZ read the application's ObjectManager and
build its local database from the services, characteristics and descriptors found there;
`LEAdvertisingManager1.RegisterAdvertisement` makes it read the `LEAdvertisement1`
properties. Both are done here the same way, by calling the application back over D-Bus.
"""

from dbus_fast import Message, MessageType

from .objects import OBJECT_MANAGER, PROPS, BluezError

GATT_SERVICE = "org.bluez.GattService1"
GATT_CHRC = "org.bluez.GattCharacteristic1"
GATT_DESC = "org.bluez.GattDescriptor1"
ADVERTISEMENT = "org.bluez.LEAdvertisement1"

# The legacy advertising payload: 31 bytes, each AD structure costs 2 bytes of header.
ADV_PAYLOAD = 31


async def call(bus, destination, path, interface, member, signature="", body=None):
    """Calls a method of a client and returns the reply, raising BluezError on an error."""
    reply = await bus.call(Message(destination=destination, path=path, interface=interface,
                                   member=member, signature=signature, body=body or []))
    if reply.message_type is MessageType.ERROR:
        text = reply.body[0] if reply.body else ""
        raise BluezError("org.bluez.Error.Failed", f"{reply.error_name}: {text}")
    return reply


def norm_uuid(text):
    """A 16/32/128-bit UUID string in BlueZ's 128-bit lower-case form."""
    text = text.lower()
    if len(text) == 4:
        text = "0000" + text
    if len(text) == 8:
        text = text + "-0000-1000-8000-00805f9b34fb"
    return text


class LocalDescriptor:
    def __init__(self, path, props):
        self.path = path
        self.uuid = norm_uuid(props["UUID"].value)
        self.flags = list(props.get("Flags").value) if "Flags" in props else []
        self.handle = 0


class LocalCharacteristic:
    """A characteristic of a registered application, as BlueZ's database holds it."""

    def __init__(self, app, path, props):
        self.app = app
        self.path = path
        self.uuid = norm_uuid(props["UUID"].value)
        self.service_path = props["Service"].value
        self.flags = list(props["Flags"].value)
        # Present (whatever its value) means the application wants the socket hand-over.
        self.write_acquired = "WriteAcquired" in props
        self.notify_acquired = "NotifyAcquired" in props
        self.descriptors = []
        self.handle = 0

    def can_notify(self):
        return "notify" in self.flags or "indicate" in self.flags


class LocalService:
    def __init__(self, path, props):
        self.path = path
        self.uuid = norm_uuid(props["UUID"].value)
        self.primary = props["Primary"].value if "Primary" in props else True
        self.characteristics = []
        self.handle = 0


class Application:
    """A GATT application registered by `owner` (a unique bus name) at `root`."""

    def __init__(self, owner, root):
        self.owner = owner
        self.root = root
        self.services = []

    @classmethod
    async def read(cls, bus, owner, root, next_handle):
        app = cls(owner, root)
        reply = await call(bus, owner, root, OBJECT_MANAGER, "GetManagedObjects")
        objects = reply.body[0]
        services, chrcs = {}, {}
        for path, ifaces in sorted(objects.items()):
            if GATT_SERVICE in ifaces:
                services[path] = LocalService(path, ifaces[GATT_SERVICE])
        for path, ifaces in sorted(objects.items()):
            if GATT_CHRC in ifaces:
                chrc = LocalCharacteristic(app, path, ifaces[GATT_CHRC])
                if chrc.service_path not in services:
                    raise BluezError("InvalidArguments", f"{path}: unknown service")
                services[chrc.service_path].characteristics.append(chrc)
                chrcs[path] = chrc
        for path, ifaces in sorted(objects.items()):
            if GATT_DESC in ifaces:
                desc = ifaces[GATT_DESC]
                owner_chrc = chrcs.get(desc["Characteristic"].value)
                if owner_chrc is None:
                    raise BluezError("InvalidArguments", f"{path}: unknown characteristic")
                owner_chrc.descriptors.append(LocalDescriptor(path, desc))
        if not services:
            raise BluezError("InvalidArguments", "application has no service")
        # Handles in database order: service, then each characteristic (declaration + value),
        # then its descriptors; a CCC is added for notify/indicate characteristics.
        for service in services.values():
            service.handle = next_handle()
            for chrc in service.characteristics:
                next_handle()
                chrc.handle = next_handle()
                if chrc.can_notify():
                    next_handle()
                for desc in chrc.descriptors:
                    desc.handle = next_handle()
        app.services = list(services.values())
        return app

    def characteristics(self):
        for service in self.services:
            yield from service.characteristics


class Advertisement:
    """An advertisement registered by `owner` at `path`, with BlueZ's validation."""

    def __init__(self, owner, path, props):
        self.owner = owner
        self.path = path
        kind = props.get("Type")
        if kind is None or kind.value not in ("peripheral", "broadcast"):
            raise BluezError("InvalidArguments", "Type must be peripheral or broadcast")
        self.connectable = kind.value == "peripheral"
        self.uuids = [norm_uuid(u) for u in props["ServiceUUIDs"].value] if "ServiceUUIDs" in props else []
        self.name = props["LocalName"].value if "LocalName" in props else None
        self.tx_power = props["TxPower"].value if "TxPower" in props else None
        # Fit the 31-byte payload: flags (3), the UUID lists, then the name, shortened to fit.
        used = 3
        for size in (2, 4, 16):
            group = [u for u in self.uuids if _uuid_size(u) == size]
            if group:
                used += 2 + size * len(group)
        if used > ADV_PAYLOAD:
            raise BluezError("InvalidLength", "advertising data too long")
        if self.name is not None:
            room = ADV_PAYLOAD - used - 2
            self.name = self.name.encode()[:max(room, 0)].decode(errors="ignore") or None

    @classmethod
    async def read(cls, bus, owner, path):
        reply = await call(bus, owner, path, PROPS, "GetAll", "s", [ADVERTISEMENT])
        return cls(owner, path, reply.body[0])


def _uuid_size(uuid):
    if uuid.endswith("-0000-1000-8000-00805f9b34fb"):
        return 2 if uuid.startswith("0000") else 4
    return 16
