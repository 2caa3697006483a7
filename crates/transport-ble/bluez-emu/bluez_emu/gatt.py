"""The remote GATT objects a GATT client sees under a connected device
(`.../dev_XX/serviceXXXX/charYYYY/descZZZZ`; BlueZ `doc/org.bluez.GattService.rst`,
`org.bluez.GattCharacteristic.rst`, `org.bluez.GattDescriptor.rst`).

`WriteValue` with `type: command` is an ATT Write Command (write without response): BlueZ
accepts at most `MTU - 3` bytes that way; `StartNotify` / `StopNotify` write the remote CCC
(per D-Bus client: the CCC is written when the first client subscribes and cleared when
the last one stops); notifications arrive as `PropertiesChanged` of `Value`.
"""

from .objects import BluezError, Interface, method, v

GATT_UUID = "00001801-0000-1000-8000-00805f9b34fb"
SERVICE_CHANGED_UUID = "00002a05-0000-1000-8000-00805f9b34fb"
CCC_UUID = "00002902-0000-1000-8000-00805f9b34fb"


class RemoteService(Interface):
    NAME = "org.bluez.GattService1"

    def __init__(self, registry, path, device_path, uuid, primary, handle):
        super().__init__(registry, path)
        self.device_path, self.uuid, self.primary, self.handle = device_path, uuid, primary, handle

    def props(self):
        return {"UUID": v("s", self.uuid), "Primary": v("b", self.primary),
                "Device": v("o", self.device_path), "Includes": v("ao", []),
                "Handle": v("q", self.handle)}


class RemoteCharacteristic(Interface):
    """A remote characteristic; `local` is the server application's characteristic (or None
    for the GATT service's Service Changed characteristic)."""

    NAME = "org.bluez.GattCharacteristic1"

    def __init__(self, registry, path, service_path, session, uuid, flags, handle, local):
        super().__init__(registry, path)
        self.service_path, self.session, self.uuid = service_path, session, uuid
        self.flags, self.handle, self.local = flags, handle, local
        self.value = b""
        self.subscribers = set()

    def props(self):
        props = {"UUID": v("s", self.uuid), "Service": v("o", self.service_path),
                 "Value": v("ay", self.value), "Notifying": v("b", bool(self.subscribers)),
                 "Flags": v("as", self.flags), "MTU": v("q", self.session.link.mtu),
                 "Handle": v("q", self.handle)}
        if "write-without-response" in self.flags:
            props["WriteAcquired"] = v("b", False)
        if "notify" in self.flags or "indicate" in self.flags:
            props["NotifyAcquired"] = v("b", False)
        return props

    def notified(self, value):
        self.value = value
        self.changed(Value=v("ay", value))

    def _check_link(self):
        if not self.session.link.up:
            raise BluezError("Failed", "Not connected")

    @method("a{sv}", "ay")
    async def ReadValue(self, msg, options):
        self._check_link()
        if "read" not in self.flags:
            raise BluezError("NotPermitted", "Read not permitted")
        return [await self.session.read(self.local, options)]

    @method("aya{sv}")
    async def WriteValue(self, msg, value, options):
        self._check_link()
        kind = options["type"].value if "type" in options else "request"
        if kind not in ("command", "request", "reliable"):
            raise BluezError("InvalidArguments", "type")
        fits = len(value) <= self.session.link.mtu - 3
        if kind == "command" and "write-without-response" in self.flags and fits:
            await self.session.write_command(self.local, bytes(value))
            return
        if "write" not in self.flags:
            # BlueZ falls back to a write request, which this characteristic does not allow.
            raise BluezError("NotSupported", "Operation is not supported")
        await self.session.write_request(self.local, bytes(value))

    @method()
    async def StartNotify(self, msg):
        self._check_link()
        if "notify" not in self.flags and "indicate" not in self.flags:
            raise BluezError("NotSupported", "Operation is not supported")
        if msg.sender in self.subscribers:
            return
        first = not self.subscribers
        self.subscribers.add(msg.sender)
        if first:
            await self.session.subscribe(self)
            self.changed(Notifying=v("b", True))

    @method()
    async def StopNotify(self, msg):
        if msg.sender not in self.subscribers:
            raise BluezError("Failed", "No notify session started")
        self.subscribers.discard(msg.sender)
        if not self.subscribers:
            self.session.unsubscribe(self)
            self.changed(Notifying=v("b", False))

    def client_gone(self, sender):
        if sender in self.subscribers:
            self.subscribers.discard(sender)
            if not self.subscribers:
                self.session.unsubscribe(self)
                self.changed(Notifying=v("b", False))

    @method("a{sv}", "hq")
    async def AcquireWrite(self, msg, options):
        raise BluezError("NotSupported", "client-side AcquireWrite is not emulated")

    @method("a{sv}", "hq")
    async def AcquireNotify(self, msg, options):
        raise BluezError("NotSupported", "client-side AcquireNotify is not emulated")


class RemoteDescriptor(Interface):
    NAME = "org.bluez.GattDescriptor1"

    def __init__(self, registry, path, chrc, uuid, handle):
        super().__init__(registry, path)
        self.chrc, self.uuid, self.handle = chrc, uuid, handle

    def props(self):
        return {"UUID": v("s", self.uuid), "Characteristic": v("o", self.chrc.path),
                "Value": v("ay", self._value()), "Handle": v("q", self.handle)}

    def _value(self):
        if self.uuid == CCC_UUID:
            return bytes([1 if self.chrc.subscribers else 0, 0])
        return b""

    @method("a{sv}", "ay")
    async def ReadValue(self, msg, options):
        return [self._value()]

    @method("aya{sv}")
    async def WriteValue(self, msg, value, options):
        if self.uuid == CCC_UUID:
            raise BluezError("NotPermitted", "Write not permitted: use StartNotify")
        raise BluezError("NotSupported", "Operation is not supported")
