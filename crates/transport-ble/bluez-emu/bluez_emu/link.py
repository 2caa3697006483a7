"""An LE link between two emulated adapters, and the GATT traffic over it.

One link per pair of adapters (either side may have connected). On a real link each side is
also a GATT client of the other (bluetoothd resolves the remote's services whatever the
role), so a link carries two `Session`s, one per direction. A session mirrors the server's
registered applications as remote objects on the client's device object and carries:

* client -> server: ATT Write Commands and CCC writes, in order, through one `Pipe`. For a
  characteristic with `WriteAcquired`, BlueZ calls the application's `AcquireWrite` with
  `{device, link, mtu}` on the first write from this device and from then on writes each
  value as one record into its end of the SOCK_SEQPACKET pair it received; otherwise it calls
  the application's `WriteValue` with `{device, link, mtu, type: "command", offset}`.
* server -> client: notifications, through another `Pipe`. For `NotifyAcquired`, enabling
  the CCC makes BlueZ call `AcquireNotify` (per device, as BlueZ 5.77+ does) and each record
  read from the socket is one notification, cut to `MTU - 3` (silently, like the ATT server);
  clearing the CCC or losing the link closes that socket.

Both pipes add the emulator's latency to every item without reordering.
"""

import asyncio
import collections
import logging
import socket

from .app import GATT_CHRC, call
from .gatt import (CCC_UUID, GATT_UUID, SERVICE_CHANGED_UUID, RemoteCharacteristic,
                   RemoteDescriptor, RemoteService)
from .objects import BluezError, v

LOG = logging.getLogger("bluez-emu")
PIPE_CAPACITY = 64


class Pipe:
    """An ordered, bounded queue of actions run one at a time, each `latency` after queueing."""

    def __init__(self, world):
        self.world = world
        self.items = collections.deque()
        self.ready = asyncio.Event()
        self.space = asyncio.Event()
        self.closed = False
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def put(self, action):
        while len(self.items) >= PIPE_CAPACITY and not self.closed:
            self.space.clear()
            await self.space.wait()
        if self.closed:
            raise BluezError("Failed", "Not connected")
        self.items.append((asyncio.get_running_loop().time() + self.world.latency, action))
        self.ready.set()

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            while not self.items:
                self.ready.clear()
                await self.ready.wait()
            due, action = self.items.popleft()
            self.space.set()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            try:
                await action()
            except (BluezError, OSError) as err:
                LOG.info("link action failed: %s", err)

    def close(self):
        self.closed = True
        self.space.set()
        self.task.cancel()


class Link:
    def __init__(self, world, a, b, mtu):
        self.world, self.a, self.b, self.mtu = world, a, b, mtu
        self.up = True
        self.drop_after = None
        self.sessions = [Session(self, a, b), Session(self, b, a)]

    def count(self):
        """One ATT packet delivered; drops the link when a `DropAfter` budget runs out."""
        if self.drop_after is None:
            return
        self.drop_after -= 1
        if self.drop_after <= 0:
            self.drop_after = None
            asyncio.get_running_loop().call_soon(self.world.drop_link, self.a, self.b, "dropped")

    def resolve(self):
        for session in self.sessions:
            session.build()
        for session in self.sessions:
            session.client.device(session.server).set_resolved()

    def close(self):
        self.up = False
        for session in self.sessions:
            session.close()


class Session:
    """GATT traffic of `client` reading and writing `server`'s database over one link."""

    def __init__(self, link, client, server):
        self.link, self.client, self.server = link, client, server
        self.bus = link.world.bus
        self.to_server = Pipe(link.world)
        self.to_client = Pipe(link.world)
        self.remote = {}  # local characteristic path -> RemoteCharacteristic
        self.object_paths = []
        self.write_socks = {}
        self.notify_socks = {}
        self.readers = {}
        self.acquiring = {}

    def options(self):
        return {"device": v("o", self.server.device(self.client).path), "link": v("s", "LE"),
                "mtu": v("q", self.link.mtu)}

    # ---- database mirror -----------------------------------------------------------------

    def build(self):
        registry = self.link.world.registry
        dev = self.client.device(self.server)
        gatt = f"{dev.path}/service0001"
        sc = RemoteCharacteristic(registry, f"{gatt}/char0002", gatt, self, SERVICE_CHANGED_UUID,
                                  ["indicate"], 3, None)
        registry.add(gatt, [RemoteService(registry, gatt, dev.path, GATT_UUID, True, 1)])
        registry.add(sc.path, [sc])
        ccc = f"{sc.path}/desc0004"
        registry.add(ccc, [RemoteDescriptor(registry, ccc, sc, CCC_UUID, 4)])
        self.object_paths.append(gatt)
        for app in self.server.apps.values():
            for service in app.services:
                spath = f"{dev.path}/service{service.handle:04x}"
                registry.add(spath, [RemoteService(registry, spath, dev.path, service.uuid,
                                                   service.primary, service.handle)])
                self.object_paths.append(spath)
                for chrc in service.characteristics:
                    cpath = f"{spath}/char{chrc.handle:04x}"
                    remote = RemoteCharacteristic(registry, cpath, spath, self, chrc.uuid,
                                                  chrc.flags, chrc.handle, chrc)
                    registry.add(cpath, [remote])
                    self.remote[chrc.path] = remote
                    handle = chrc.handle
                    if chrc.can_notify():
                        handle += 1
                        dpath = f"{cpath}/desc{handle:04x}"
                        registry.add(dpath, [RemoteDescriptor(registry, dpath, remote, CCC_UUID, handle)])
                    for desc in chrc.descriptors:
                        dpath = f"{cpath}/desc{desc.handle:04x}"
                        registry.add(dpath, [RemoteDescriptor(registry, dpath, remote, desc.uuid,
                                                              desc.handle)])

    # ---- client -> server ----------------------------------------------------------------

    async def write_command(self, local, value):
        self.link.world.stats["writes"] += 1
        await self.to_server.put(lambda: self._deliver_write(local, value))

    async def write_request(self, local, value):
        done = asyncio.get_running_loop().create_future()

        async def deliver():
            try:
                opts = dict(self.options(), type=v("s", "request"), offset=v("q", 0))
                await call(self.bus, local.app.owner, local.path, GATT_CHRC, "WriteValue",
                           "aya{sv}", [value, opts])
                done.set_result(None)
            except BluezError as err:
                done.set_exception(err)

        await self.to_server.put(deliver)
        await done

    async def read(self, local, options):
        reply = await call(self.bus, local.app.owner, local.path, GATT_CHRC, "ReadValue", "a{sv}",
                           [dict(self.options(), offset=v("q", 0))])
        return reply.body[0]

    async def _deliver_write(self, local, value):
        if not local.write_acquired:
            opts = dict(self.options(), type=v("s", "command"), offset=v("q", 0))
            await call(self.bus, local.app.owner, local.path, GATT_CHRC, "WriteValue", "aya{sv}",
                       [value, opts])
            self.link.count()
            return
        for _attempt in range(2):
            sock = await self._acquire_write(local)
            try:
                await asyncio.get_running_loop().sock_sendall(sock, value)
                self.link.count()
                return
            except OSError:
                # The application closed its end: BlueZ forgets the socket and acquires anew.
                self.write_socks.pop(local.path, None)
                sock.close()
        raise BluezError("Failed", "write socket refused the value")

    async def _acquire_write(self, local):
        sock = self.write_socks.get(local.path)
        if sock is None:
            self.link.world.stats["acquire_write"] += 1
            reply = await call(self.bus, local.app.owner, local.path, GATT_CHRC, "AcquireWrite",
                               "a{sv}", [self.options()])
            sock = _socket(reply)
            if not self.link.up:
                sock.close()
                raise BluezError("Failed", "Not connected")
            self.write_socks[local.path] = sock
        return sock

    async def subscribe(self, remote):
        local = remote.local
        if local is None:
            return

        async def enable_ccc():
            if local.notify_acquired:
                # BlueZ does not wait for the application here: later writes may overtake.
                task = asyncio.get_running_loop().create_task(self._acquire_notify(local))
                self.readers[local.path] = task
            else:
                await call(self.bus, local.app.owner, local.path, GATT_CHRC, "StartNotify")

        await self.to_server.put(enable_ccc)

    async def _acquire_notify(self, local):
        self.link.world.stats["acquire_notify"] += 1
        reply = await call(self.bus, local.app.owner, local.path, GATT_CHRC, "AcquireNotify",
                           "a{sv}", [self.options()])
        sock = _socket(reply)
        self.notify_socks[local.path] = sock
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await loop.sock_recv(sock, 512)
                if not data:
                    break
                data = data[: self.link.mtu - 3]
                await self.to_client.put(lambda d=data: self._deliver_notify(local, d))
        finally:
            self.notify_socks.pop(local.path, None)
            sock.close()

    def unsubscribe(self, remote):
        local = remote.local
        if local is None:
            return
        task = self.readers.pop(local.path, None)
        if task is not None:
            task.cancel()
        elif self.link.up:
            asyncio.get_running_loop().create_task(
                _quiet(call(self.bus, local.app.owner, local.path, GATT_CHRC, "StopNotify")))

    # ---- server -> client ----------------------------------------------------------------

    def app_value(self, local_path, value):
        """A `Value` change of a non-acquired characteristic: notify if subscribed."""
        remote = self.remote.get(local_path)
        if remote is not None and remote.subscribers and local_path not in self.readers:
            data = bytes(value)[: self.link.mtu - 3]
            asyncio.get_running_loop().create_task(
                self.to_client.put(lambda: self._deliver_notify(remote.local, data)))

    async def _deliver_notify(self, local, data):
        remote = self.remote.get(local.path)
        if remote is not None and remote.subscribers:
            self.link.world.stats["notifications"] += 1
            remote.notified(data)
            self.link.count()

    def app_gone(self, app):
        for chrc in app.characteristics():
            task = self.readers.pop(chrc.path, None)
            if task is not None:
                task.cancel()
            sock = self.write_socks.pop(chrc.path, None)
            if sock is not None:
                sock.close()

    def close(self):
        self.to_server.close()
        self.to_client.close()
        for task in self.readers.values():
            task.cancel()
        for sock in self.write_socks.values():
            sock.close()
        self.readers.clear()
        self.write_socks.clear()
        for path in self.object_paths:
            self.link.world.registry.remove_tree(path)
        self.object_paths.clear()


async def _quiet(call_coro):
    """Awaits a call nobody waits for; its failure (the application is gone) is logged."""
    try:
        await call_coro
    except (BluezError, EOFError, OSError) as err:  # the application or the bus is gone
        LOG.info("%r", err)


def _socket(reply):
    """The socket a method reply carries as its first (`h`) argument."""
    index = reply.body[0]
    fd = reply.unix_fds[index] if reply.unix_fds else index
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock
