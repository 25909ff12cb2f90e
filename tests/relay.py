"""The real engine's unix socket relayed from another address this test owns: a TCP port on
loopback (``DOCKER_HOST=tcp://localhost:PORT``: the engine as one reached over the network),
or a unix socket of its own (an engine whose host the test can take away: :meth:`Relay.close`
cuts every connection under way). Nothing of Docker is imitated."""

from __future__ import annotations

import os
import socket
import threading

ENGINE_SOCKET = "/var/run/docker.sock"


class Relay:
    """Connections to ``path`` (a unix socket), or else to a free TCP port on loopback
    (:attr:`port`), forwarded to the engine's socket until :meth:`close`."""

    def __init__(self, path: str | None = None, target: str = ENGINE_SOCKET):
        self.path, self.target = path, target
        if path is None:
            self._listener = socket.create_server(("127.0.0.1", 0))
            self.port = self._listener.getsockname()[1]
        else:
            self._listener = socket.socket(socket.AF_UNIX)
            self._listener.bind(path)
            self._listener.listen(64)
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        """No new connection, and every one under way cut: seen from its clients, the engine
        stopped answering."""
        self._listener.close()
        if self.path is not None:
            os.unlink(self.path)
        with self._lock:
            for s in self._open:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
