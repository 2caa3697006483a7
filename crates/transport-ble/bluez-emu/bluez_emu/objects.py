"""The D-Bus object layer: a registry of objects and interfaces served on one connection.

Every method call to this connection goes through `Registry.handle`, which implements
`org.freedesktop.DBus.Introspectable` (with child nodes, which bluez-async walks to find
services and characteristics), `org.freedesktop.DBus.Properties` and, at `/`,
`org.freedesktop.DBus.ObjectManager`, the way bluetoothd does. Interfaces are plain classes
(`Interface`) with `props()` and methods marked by `@method`.
"""

import asyncio
import logging

from dbus_fast import Message, MessageType, Variant

LOG = logging.getLogger("bluez-emu")

PROPS = "org.freedesktop.DBus.Properties"
INTROSPECT = "org.freedesktop.DBus.Introspectable"
OBJECT_MANAGER = "org.freedesktop.DBus.ObjectManager"


class BluezError(Exception):
    """A D-Bus error reply, named like BlueZ's (`org.bluez.Error.Failed`, ...)."""

    def __init__(self, name, text=""):
        super().__init__(text)
        self.name = name if "." in name else "org.bluez.Error." + name
        self.text = text


def method(in_sig="", out_sig=""):
    """Marks an `async def` of an `Interface` as a D-Bus method with these signatures."""

    def mark(fn):
        fn.dbus = (in_sig, out_sig)
        return fn

    return mark


class Interface:
    """One D-Bus interface on one object. Subclasses set `NAME` and implement `props`."""

    NAME = ""

    def __init__(self, registry, path):
        self.registry = registry
        self.path = path

    def props(self):
        """The current properties: name -> Variant (absent ones left out, as BlueZ does)."""
        return {}

    def set_prop(self, name, value, sender):
        raise BluezError("org.freedesktop.DBus.Error.PropertyReadOnly", name)

    def changed(self, **props):
        """Emits PropertiesChanged for the given (name=Variant) properties."""
        self.registry.cache = None
        self.registry.emit(self.path, PROPS, "PropertiesChanged", "sa{sv}as", [self.NAME, props, []])

    def methods(self):
        out = {}
        for name in dir(type(self)):
            fn = getattr(self, name, None)
            if callable(fn) and hasattr(fn, "dbus"):
                out[name] = fn
        return out


class Registry:
    """Objects served by this connection: path -> {interface name: Interface}."""

    def __init__(self, bus):
        self.bus = bus
        self.objects = {}
        self.unmanaged = set()
        # GetManagedObjects' answer until something changes (it is asked for a lot).
        self.cache = None

    def add(self, path, interfaces, managed=True, announce=True):
        self.cache = None
        obj = self.objects.setdefault(path, {})
        added = {}
        for iface in interfaces:
            obj[iface.NAME] = iface
            added[iface.NAME] = iface.props()
        if not managed:
            self.unmanaged.add(path)
            return
        if not announce:
            return
        self.emit("/", OBJECT_MANAGER, "InterfacesAdded", "oa{sa{sv}}", [path, added])

    def remove(self, path):
        self.cache = None
        obj = self.objects.pop(path, None)
        if obj is None:
            return
        if path in self.unmanaged:
            self.unmanaged.discard(path)
            return
        self.emit("/", OBJECT_MANAGER, "InterfacesRemoved", "oas", [path, list(obj)])

    def remove_tree(self, prefix):
        """Removes `prefix` and everything below it, deepest first."""
        doomed = [p for p in self.objects if p == prefix or p.startswith(prefix + "/")]
        for path in sorted(doomed, key=len, reverse=True):
            self.remove(path)

    def emit(self, path, interface, member, signature, body):
        self.bus.send(Message.new_signal(path, interface, member, signature, body))

    # ---- dispatch -------------------------------------------------------------------------

    def handle(self, msg):
        """The bus's message handler: serves every method call addressed to us."""
        if msg.message_type is not MessageType.METHOD_CALL:
            return False
        asyncio.get_running_loop().create_task(self._serve(msg))
        return True

    async def _serve(self, msg):
        try:
            signature, body, fds = await self._dispatch(msg)
            reply = Message.new_method_return(msg, signature, body, fds)
        except BluezError as err:
            reply = Message.new_error(msg, err.name, err.text)
        except Exception as err:  # a bug in the emulator: say so, keep serving
            LOG.exception("handling %s.%s on %s", msg.interface, msg.member, msg.path)
            reply = Message.new_error(msg, "org.bluez.Error.Failed", f"emulator: {err!r}")
        if not msg.flags & 0x1:  # NO_REPLY_EXPECTED
            self.bus.send(reply)

    async def _dispatch(self, msg):
        path, iface, member = msg.path, msg.interface, msg.member
        if iface == INTROSPECT and member == "Introspect":
            return "s", [self.introspect(path)], []
        if iface == "org.freedesktop.DBus.Peer":
            if member == "Ping":
                return "", [], []
            return "s", ["00000000000000000000000000000000"], []
        if path == "/" and iface == OBJECT_MANAGER and member == "GetManagedObjects":
            return "a{oa{sa{sv}}}", [self.managed_objects()], []
        obj = self.objects.get(path)
        if obj is None:
            raise BluezError("org.freedesktop.DBus.Error.UnknownObject", f"no object {path}")
        if iface == PROPS:
            return self._properties(obj, member, msg)
        candidates = [obj[iface]] if iface in obj else ([] if iface else list(obj.values()))
        for target in candidates:
            fn = target.methods().get(member)
            if fn is None:
                continue
            in_sig, out_sig = fn.dbus
            if msg.signature != in_sig:
                raise BluezError("org.bluez.Error.InvalidArguments", f"{member} takes ({in_sig})")
            result = await fn(msg, *msg.body)
            if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], FdList):
                return out_sig, result[0], list(result[1])
            return out_sig, ([] if result is None else result), []
        raise BluezError("org.freedesktop.DBus.Error.UnknownMethod", f"{iface}.{member}")

    def _properties(self, obj, member, msg):
        name = msg.body[0] if msg.body else ""
        target = obj.get(name)
        if target is None:
            raise BluezError("org.freedesktop.DBus.Error.InvalidArgs", f"no interface {name}")
        props = target.props()
        if member == "GetAll":
            return "a{sv}", [props], []
        if member == "Get":
            if msg.body[1] not in props:
                raise BluezError("org.freedesktop.DBus.Error.InvalidArgs", f"no property {msg.body[1]}")
            return "v", [props[msg.body[1]]], []
        if member == "Set":
            target.set_prop(msg.body[1], msg.body[2].value, msg.sender)
            return "", [], []
        raise BluezError("org.freedesktop.DBus.Error.UnknownMethod", member)

    def managed_objects(self):
        if self.cache is None:
            self.cache = self._managed_objects()
        return self.cache

    def _managed_objects(self):
        return {
            path: {name: iface.props() for name, iface in obj.items()}
            for path, obj in self.objects.items()
            if path not in self.unmanaged
        }

    def introspect(self, path):
        prefix = "/" if path == "/" else path + "/"
        children = sorted(
            {p[len(prefix):].split("/")[0] for p in self.objects if p.startswith(prefix) and p != path}
        )
        parts = ['<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"',
                 ' "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">', "<node>",
                 f'<interface name="{INTROSPECT}"><method name="Introspect">'
                 '<arg name="xml" type="s" direction="out"/></method></interface>']
        for name, iface in self.objects.get(path, {}).items():
            parts.append(f'<interface name="{name}">')
            for member, fn in sorted(iface.methods().items()):
                parts.append(f'<method name="{member}"></method>')
            for prop, value in sorted(iface.props().items()):
                parts.append(f'<property name="{prop}" type="{value.signature}" access="read"></property>')
            parts.append("</interface>")
        parts += [f'<node name="{child}"/>' for child in children]
        parts.append("</node>")
        return "\n".join(parts)


class FdList(list):
    """Returned as the second element of a method result to attach unix fds to the reply."""


async def add_match(bus, rule):
    """Asks the bus daemon for the signals `rule` matches."""
    await bus.call(Message(destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                           interface="org.freedesktop.DBus", member="AddMatch", signature="s",
                           body=[rule]))


def v(signature, value):
    """Shorthand for a Variant."""
    return Variant(signature, value)
