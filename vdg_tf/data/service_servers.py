"""`vdg data-service dispatcher` / `worker`: tf.data service servers in the foreground.

TensorFlow's own servers (`tf.data.experimental.service.DispatchServer`, `WorkerServer`),
configured and kept running until Ctrl-C (or SIGTERM, or `stop` for a Python caller),
then stopped cleanly. The dispatcher hands out shard files; a worker runs the training
input pipeline (`vdg_tf.data.service`) and must be able to read the shards and run every
op in it: the text tokenizer's ops load before the worker starts.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from vdg_tf.results import Result

logger = logging.getLogger(__name__)


@dataclass
class ServerResult(Result):
    """A server that ran: its role, the address clients used, and why it stopped."""

    role: str
    address: str
    stopped_by: str

    def format(self) -> str:
        return f"{self.role} {self.address} stopped ({self.stopped_by})"


def _dispatcher_address(dispatcher: str) -> str:
    """`HOST:PORT` or `grpc://HOST:PORT` -> `HOST:PORT`; anything else is refused."""
    hostport = dispatcher.removeprefix("grpc://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--dispatcher {dispatcher}: expected HOST:PORT, e.g. 10.0.0.5:5050")
    return hostport


def _check_port(port: int) -> None:
    if not 0 <= port < 65536:
        raise ValueError(f"--port {port}: expected 0-65535 (0: any free port)")


def _load_pipeline_ops() -> None:
    """Register the ops of the training pipeline that are not in TensorFlow itself (the
    WordPiece tokenizer's, from tensorflow-text): the dispatcher reads the pipeline's
    graph and the workers run it, and neither can with an op it does not know."""
    import tensorflow_text  # noqa: F401


def _serve(server, role: str, address: str, stop: threading.Event | None) -> ServerResult:
    """Block until Ctrl-C, SIGTERM or `stop`; then stop `server`."""
    stop = stop or threading.Event()
    reason = ["stop"]
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    if main:  # SIGTERM (a scheduler, `kill`) stops as cleanly as Ctrl-C
        signal.signal(signal.SIGTERM, lambda *_: (reason.__setitem__(0, "SIGTERM"), stop.set()))
    logger.info("%s listening at %s (Ctrl-C stops it)", role, address)
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        reason[0] = "Ctrl-C"
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        server.stop()
    logger.info("%s at %s stopped (%s)", role, address, reason[0])
    return ServerResult(role, address, reason[0])


def run_dispatcher(
    port: int = 5050, work_dir: str | Path | None = None, stop: threading.Event | None = None
) -> ServerResult:
    """Run a tf.data service dispatcher on `port` until stopped.

    Args:
      port: the port clients (`data.service: grpc://HOST:PORT`) and workers connect to;
        0 picks a free one (logged).
      work_dir: where the dispatcher journals its state (fault-tolerant mode: a restarted
        dispatcher picks up its jobs); shared storage when it may restart on another host.
      stop: set it to stop the server (a Python caller's Ctrl-C).
    """
    _check_port(port)
    _load_pipeline_ops()
    service = tf.data.experimental.service
    config = service.DispatcherConfig(
        port=port,
        work_dir=str(work_dir) if work_dir else None,
        fault_tolerant_mode=bool(work_dir),
    )
    server = service.DispatchServer(config)
    return _serve(server, "dispatcher", server.target, stop)


def run_worker(
    dispatcher: str,
    port: int = 5051,
    host: str = "localhost",
    stop: threading.Event | None = None,
) -> ServerResult:
    """Run a tf.data service worker that registers with `dispatcher`, until stopped.

    Args:
      dispatcher: `HOST:PORT` of the dispatcher.
      port: the port trainers fetch batches from; 0 picks a free one.
      host: the name trainers reach this worker by (its address as the dispatcher
        tells it to clients): `localhost` on one machine, the host's name on a cluster.
      stop: set it to stop the server.
    """
    _check_port(port)
    address = _dispatcher_address(dispatcher)
    _load_pipeline_ops()
    service = tf.data.experimental.service
    config = service.WorkerConfig(
        dispatcher_address=address, worker_address=f"{host}:%port%", port=port
    )
    server = service.WorkerServer(config)
    return _serve(server, "worker", f"grpc://{host}:{server._address.rsplit(':', 1)[1]}", stop)
