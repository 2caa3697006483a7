"""`org.bitcraps.Emulator1` at `/org/bitcraps/emulator`: controls for tests.

Not part of BlueZ and not listed by the ObjectManager. Adapters are named by object path.
"""

from .objects import BluezError, Interface, method, v


class Emulator1(Interface):
    NAME = "org.bitcraps.Emulator1"

    def __init__(self, registry, path, world):
        super().__init__(registry, path)
        self.world = world

    def props(self):
        return {"Adapters": v("ao", [a.path for a in self.world.adapters]),
                "DefaultMtu": v("q", self.world.default_mtu)}

    def _key(self, a, b):
        return frozenset((self.world.adapter(a).path, self.world.adapter(b).path))

    @method("", "o")
    async def AddAdapter(self, msg):
        """Plugs in a new adapter; returns its path."""
        return [self.world.add_adapter().path]

    @method("o")
    async def RemoveAdapter(self, msg, adapter):
        """Unplugs an adapter: its links drop and its objects go."""
        self.world.remove_adapter(self.world.adapter(adapter))

    @method("q")
    async def SetDefaultMtu(self, msg, mtu):
        """The ATT MTU of future links (23..517)."""
        self.world.default_mtu = _mtu(mtu)

    @method("ooq")
    async def SetMtu(self, msg, a, b, mtu):
        """The ATT MTU of future links between adapters `a` and `b`."""
        self.world.pair_mtu[self._key(a, b)] = _mtu(mtu)

    @method("u")
    async def SetLatency(self, msg, millis):
        """Latency added to every connect and every ATT packet, in milliseconds."""
        self.world.latency = millis / 1000.0

    @method("ob")
    async def SetRefuse(self, msg, adapter, refuse):
        """Whether connections to `adapter` fail (as if it had gone out of range)."""
        self.world.adapter(adapter).refuse = refuse

    @method("oo")
    async def DropLink(self, msg, a, b):
        """Drops the link between `a` and `b` at once (a supervision timeout)."""
        if not self.world.drop_link(self.world.adapter(a), self.world.adapter(b), "dropped"):
            raise BluezError("DoesNotExist", "no link")

    @method("oou")
    async def DropAfter(self, msg, a, b, packets):
        """Drops the link between `a` and `b` after `packets` more ATT packets (writes or
        notifications, either way) have been delivered."""
        link = self.world.links.get(self._key(a, b))
        if link is None:
            raise BluezError("DoesNotExist", "no link")
        link.drop_after = max(packets, 1)

    @method("", "a(ooq)")
    async def Links(self, msg):
        """Live links: (adapter, adapter, MTU)."""
        return [[[link.a.path, link.b.path, link.mtu] for link in self.world.links.values()]]

    @method("", "a{st}")
    async def Stats(self, msg):
        """Counters: connects, refused, drops, writes, notifications, acquire_write, ..."""
        return [dict(self.world.stats)]


def _mtu(mtu):
    if not 23 <= mtu <= 517:
        raise BluezError("InvalidArguments", "MTU must be in 23..517")
    return mtu
