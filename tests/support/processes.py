"""A salespulse worker as a real child process, stoppable by signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from salespulse.broker import free_port
from tests.support.polling import wait_for
from tests.support.scrape import ready


class WorkerProcess:
    def __init__(self, broker_url: str, config: Path, log_dir: Path, *, app_id: str = "salespulse"):
        self.broker_url = broker_url
        self.config = config
        self.log_dir = log_dir
        self.app_id = app_id
        self.metrics_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
        env.update(
            SALESPULSE_BROKER=self.broker_url,
            SALESPULSE_CONFIG=str(self.config),
            SALESPULSE_METRICS_PORT=str(self.metrics_port),
            SALESPULSE_METRICS_HOST="127.0.0.1",
            SALESPULSE_APP_ID=self.app_id,
            # The embedded broker makes a rejoining group wait for the session timeout.
            SALESPULSE_SESSION_TIMEOUT_SECONDS="6",
            SALESPULSE_HEARTBEAT_INTERVAL_SECONDS="1",
            SALESPULSE_LOG_LEVEL="info",
        )
        return env

    def start(self) -> WorkerProcess:
        self.starts += 1
        log = open(self.log_dir / f"worker-{self.metrics_port}-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "salespulse", "worker"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        def probe() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}: {self.tail()}")
            return ready(self.metrics_port)

        wait_for(probe, timeout=timeout, what=f"worker ready on :{self.metrics_port}")

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"worker ignored {sig.name} for {timeout}s") from None
        return self.process.returncode

    def tail(self, lines: int = 40) -> str:
        logs = sorted(self.log_dir.glob(f"worker-{self.metrics_port}-*.log"))
        if not logs:
            return ""
        return "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:])
