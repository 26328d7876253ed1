"""The workspace host from here: its name resolves, its port accepts TCP (or a proxy is used)."""

from __future__ import annotations

import socket
import urllib.request

from grid_assets.check_config.report import FAIL, PASS, Report, bounded, one_line
from grid_assets.config import HOSTNAME_VAR
from grid_assets.lakehouse.databricks import Deadline


def check_dns(report: Report, host: str, port: int, timeout: float) -> None:
    try:
        infos = bounded(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except Deadline as exc:
        report.line(FAIL, "host resolves", f"{host}: {exc}", "check DNS / network from here")
        return
    except OSError as exc:
        report.line(
            FAIL,
            "host resolves",
            f"{host} does not resolve ({one_line(exc)})",
            f"check {HOSTNAME_VAR} and DNS from this machine",
        )
        return
    addresses = sorted({str(info[4][0]) for info in infos})
    shown = ", ".join(addresses[:3]) + (" ..." if len(addresses) > 3 else "")
    report.line(PASS, "host resolves", f"{host} -> {shown}")


def check_port(report: Report, host: str, port: int, timeout: float) -> None:
    name = "port reachable"
    proxies = urllib.request.getproxies()
    if proxies.get("https") and not urllib.request.proxy_bypass(host):
        report.line(
            PASS,
            name,
            "an HTTPS proxy is configured: not probed directly (the checks below use the proxy)",
        )
        return
    seconds = min(float(timeout), 10.0)
    try:
        socket.create_connection((host, port), timeout=seconds).close()
    except ConnectionRefusedError:
        report.line(
            FAIL,
            name,
            f"{host}:{port} refused the connection",
            f"check the host and port in {HOSTNAME_VAR}; Databricks listens on 443",
        )
    except TimeoutError:
        report.line(
            FAIL,
            name,
            f"{host}:{port} did not answer within {seconds:g} s",
            "a firewall or missing proxy setting blocks HTTPS to the workspace",
        )
    except OSError as exc:
        report.line(FAIL, name, f"{host}:{port}: {one_line(exc)}", "check network access")
    else:
        report.line(PASS, name, f"{host}:{port} accepts TCP connections")
