"""A fix for dbus-fast 5.2.0 (the pinned version): its asyncio writer treats `EAGAIN` from a
full socket as a fatal error and drops the bus connection. Large replies
(`GetManagedObjects` with many adapters) to several clients at once fill the socket, so
here a full socket means "wait until writable", as it should.
"""

import array
import socket

from dbus_fast.aio import message_bus as aio_bus


def _write_callback(self, remove_writer=True):
    sock = self.sock
    try:
        while True:
            if self.buf is None:
                if not self.messages:
                    if remove_writer:
                        self.loop.remove_writer(self.fd)
                    return
                buf, unix_fds, fut = self.messages.popleft()
                self.unix_fds = unix_fds
                self.buf = memoryview(buf)
                self.offset = 0
                self.fut = fut
            if self.unix_fds and self.negotiate_unix_fd:
                ancdata = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", self.unix_fds))]
                self.offset += sock.sendmsg([self.buf[self.offset:]], ancdata)
                self.unix_fds = None
            else:
                self.offset += sock.send(self.buf[self.offset:])
            if self.offset < len(self.buf):
                self.loop.add_writer(self.fd, self.write_callback)
                return
            self.buf = None
            aio_bus._future_set_result(self.fut, None)
    except BlockingIOError:
        self.loop.add_writer(self.fd, self.write_callback)
    except Exception as e:
        if self.bus._user_disconnect:
            aio_bus._future_set_result(self.fut, None)
        else:
            aio_bus._future_set_exception(self.fut, e)
        self.bus._finalize(e)


def install():
    aio_bus._MessageWriter.write_callback = _write_callback
