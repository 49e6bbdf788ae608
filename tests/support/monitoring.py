"""A real Prometheus and a real Alertmanager on 127.0.0.1, with the project's own files.

Rule files are copied with their evaluation intervals and ``for`` durations
shortened, so an end-to-end run takes seconds instead of the quarter hours a
wall screen wants; the durations themselves are covered by promtool tests.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from salespulse.broker import free_port
from tests.support.polling import wait_for

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "rules"
ALERTMANAGER_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
PLACEHOLDER_HOOKS = "http://127.0.0.1:5001"


def fast_rules(target: Path, rules: Path = RULES, interval: str = "1s") -> list[Path]:
    """The project's rule files (those in *rules*) with 1 s (*interval*) intervals and no
    ``for`` waiting."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(rules.glob("*.yml")):
        text = source.read_text()
        text = re.sub(r"(?m)^(\s+interval:)\s*\S+", rf"\1 {interval}", text)
        text = re.sub(r"(?m)^(\s+for:)\s*\S+", r"\1 0s", text)
        path = target / source.name
        path.write_text(text)
        written.append(path)
    return written


class Process:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class Prometheus(Process):
    """Prometheus with the project's rule files (see fast_rules: *rules* is where to
    take them from, *interval* their groups' interval); *targets* and *alertmanager*
    may be left empty, *flags* are added to its command line and *storage* is the
    `storage:` section of its configuration."""

    def __init__(
        self,
        workdir: Path,
        targets: Iterable[str],
        alertmanager: str | None,
        data: Path | None = None,
        *,
        flags: Sequence[str] = (),
        storage: Mapping[str, Any] | None = None,
        rules: Path = RULES,
        interval: str = "1s",
    ) -> None:
        self.port = free_port()
        rule_files = fast_rules(workdir / "rules", rules, interval)
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": interval},
            "rule_files": [str(path) for path in rule_files],
        }
        if targets := list(targets):
            config["scrape_configs"] = [
                {"job_name": "salespulse", "static_configs": [{"targets": targets}]}
            ]
        if alertmanager:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]
            }
        if storage:
            config["storage"] = dict(storage)
        config_path = workdir / "prometheus.yml"
        config_path.write_text(json.dumps(config))  # JSON is YAML
        data = data or workdir / "data"
        super().__init__(
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={config_path}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *flags,
            ],
            workdir / "prometheus.log",
        )
        wait_for(lambda: self._ready(), timeout=60, what=f"prometheus on :{self.port}")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {self.tail()}")
        return _http_ok(f"http://127.0.0.1:{self.port}/-/ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query; raises with Prometheus' error on a bad one."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        if body["status"] != "success":
            raise AssertionError(f"{expr}: {body}")
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"value": data["result"]}]
        return list(data["result"])

    def api(self, path: str, *, timeout: float = 60, **params: str) -> dict[str, Any]:
        """The decoded answer of an HTTP API call, an error answer too (Prometheus sends
        its errors as JSON with a 4xx or 5xx status)."""
        url = f"http://127.0.0.1:{self.port}{path}?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                answer: dict[str, Any] = json.loads(response.read())
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read())
        return answer

    def own_metrics(self) -> str:
        """Prometheus' own /metrics (rule group durations, failures and the like)."""
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.port}/metrics", timeout=10
        ) as response:
            return str(response.read().decode())


def backfill(data: Path, series: str, values: Iterable[tuple[float, float]], workdir: Path) -> None:
    """Write history (timestamp, value) of one gauge *series* into a TSDB directory."""
    name = series.split("{", 1)[0]
    lines = [f"# TYPE {name} gauge"]
    lines += [f"{series} {value} {timestamp:.3f}" for timestamp, value in values]
    lines.append("# EOF")
    source = workdir / "history.om"
    source.write_text("\n".join(lines) + "\n")
    data.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [shutil.which("promtool") or "promtool", "tsdb", "create-blocks-from", "openmetrics",
         str(source), str(data)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


class WebhookReceiver:
    """Collects what Alertmanager posts, by receiver path."""

    def __init__(self) -> None:
        received: list[tuple[str, dict[str, Any]]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, alertname: str) -> list[tuple[str, dict[str, Any]]]:
        """(receiver path, alert) for every alert of that name received so far."""
        return [
            (path, alert)
            for path, body in list(self.received)
            for alert in body.get("alerts", [])
            if alert.get("labels", {}).get("alertname") == alertname
        ]

    def stop(self) -> None:
        self.server.shutdown()


# The sales hours of alertmanager.yml, and a week with no hour outside them.
SALES_HOURS = re.compile(r"(?ms)^(  - name: sales-hours\n    time_intervals:\n).*?(?=^\S)")
ALWAYS = "      - weekdays: ['sunday:saturday']\n\n"


class Alertmanager(Process):
    """The project's alertmanager.yml, its placeholder hooks pointed at *receiver*.

    Its sales hours are widened to the whole week: a test that a KPI alert
    reaches its receiver must not depend on the hour it runs at (the hours
    themselves are tested in tests/unit/deploy/test_alerting_config.py)."""

    def __init__(self, workdir: Path, receiver: WebhookReceiver) -> None:
        self.port = free_port()
        text = ALERTMANAGER_CONFIG.read_text().replace(PLACEHOLDER_HOOKS, receiver.url)
        text, found = SALES_HOURS.subn(lambda match: match.group(1) + ALWAYS, text)
        assert found == 1, "no sales-hours interval in alertmanager.yml"
        text = re.sub(r"(?m)^(\s+group_wait:)\s*\S+", r"\1 1s", text)
        text = re.sub(r"(?m)^(\s+group_interval:)\s*\S+", r"\1 1s", text)
        config = workdir / "alertmanager.yml"
        config.write_text(text)
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        super().__init__(
            [
                binary or "alertmanager",
                f"--config.file={config}",
                f"--storage.path={workdir / 'alertmanager-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            workdir / "alertmanager.log",
        )
        wait_for(
            lambda: _http_ok(f"http://127.0.0.1:{self.port}/-/ready"),
            timeout=60,
            what=f"alertmanager on :{self.port}",
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"
