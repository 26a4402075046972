"""System metrics: CPU, memory, disk and network (and GPUs through NVML) sampled into a run.

``start_run(..., system_metrics=True)``, ``with_run(..., system_metrics=True)`` or the
environment variable ``CHACHAML_SYSTEM_METRICS=1`` start one daemon thread per run that logs
metrics named ``system/cpu_*``, ``system/memory_*``, ``system/disk_*``, ``system/network_*`` and
``system/gpu<N>_*`` every 10 seconds (``system_metrics=5.0`` or
``CHACHAML_SYSTEM_METRICS_INTERVAL=5`` change it). The first sample comes after one second (or
after one interval, if that is shorter). The thread stops when the run ends (``end_run``, the
``with_run`` block's exit, process exit); if the run is ended some other way, its next write is
refused and the thread stops then. Decisions: docs/adr/0015-system-metrics-sampler.md.

Everything is read with the standard library from ``/proc`` (Linux) and ``shutil.disk_usage``;
on other systems the counters that are missing are skipped, never an error. GPUs are read through
NVML when the optional package ``nvidia-ml-py`` (extra ``gpu``) and a driver are present;
otherwise there are no GPU metrics, and no error.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import threading
import time
from typing import Any

from chachaml.errors import InvalidValueError

__all__ = ["DEFAULT_INTERVAL", "Probe", "Request", "Sampler", "requested", "running", "start", "stop"]

ENV = "CHACHAML_SYSTEM_METRICS"
ENV_INTERVAL = "CHACHAML_SYSTEM_METRICS_INTERVAL"
DEFAULT_INTERVAL = 10.0
# The first sample comes this soon (or after one interval, if shorter): a short run still gets
# one, and the CPU percentage has a baseline to be measured against.
FIRST_SAMPLE_S = 1.0
# How long end_run waits for a sample being written to land before it ends the run.
STOP_TIMEOUT_S = 5.0

_ON = {"1", "true", "yes", "on"}
_OFF = {"", "0", "false", "no", "off"}
MB = 1024 * 1024
GB = 1024 * MB


class Request:
    """What a ``start_run`` call asked for: sample every ``interval`` seconds.

    ``explicit`` is false when the request came from ``CHACHAML_SYSTEM_METRICS``: that applies
    to top-level runs only, since a child runs on the machine its parent already samples.
    (A plain class: a dataclass would cost milliseconds at import, on every ``start_run`` path.)
    """

    __slots__ = ("explicit", "interval")

    def __init__(self, interval: float, explicit: bool) -> None:
        self.interval = interval
        self.explicit = explicit

    def __repr__(self) -> str:
        return f"Request(interval={self.interval!r}, explicit={self.explicit!r})"


def _interval(value: Any, where: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise InvalidValueError(f"{where} must be a positive number of seconds such as 10, got {value!r}")
    return seconds


def requested(system_metrics: Any) -> Request | None:
    """Resolve the ``system_metrics=`` argument of ``start_run`` (and the environment).

    Args:
        system_metrics: ``None`` (follow ``CHACHAML_SYSTEM_METRICS``), ``True``/``False``, or a
            positive number: on, sampling every that many seconds.

    Returns:
        the sampling request, or None when system metrics are off.

    Raises:
        InvalidValueError: a value that is none of these, or a malformed environment variable
            (checked before any run is opened, so a typo leaves nothing behind).
    """
    explicit = True
    if system_metrics is None:
        flag = os.environ.get(ENV, "").strip().lower()
        if flag in _OFF:
            return None
        if flag not in _ON:
            raise InvalidValueError(
                f"{ENV}={os.environ[ENV]!r} is not understood; set it to 1 (on) or 0 (off)"
            )
        system_metrics, explicit = True, False
    if system_metrics is False:
        return None
    if system_metrics is True:
        env = os.environ.get(ENV_INTERVAL, "").strip()
        interval = _interval(env, ENV_INTERVAL) if env else DEFAULT_INTERVAL
    elif isinstance(system_metrics, int | float):
        interval = _interval(system_metrics, "system_metrics")
    else:
        raise InvalidValueError(
            "system_metrics must be True, False, None or a sampling interval in seconds such as "
            f"5.0, got {system_metrics!r}"
        )
    return Request(interval, explicit)


# -- reading the counters -----------------------------------------------------------------------
def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as fh:
        return fh.read()


class _Nvml:
    """GPU counters through NVML; ``open()`` gives None when the package or a driver is missing."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self._nvml = nvml
        self._handles = handles

    @classmethod
    def open(cls) -> _Nvml | None:
        import importlib

        try:
            nvml = importlib.import_module("pynvml")  # extra ``gpu``: nvidia-ml-py
        except ImportError:
            return None
        try:
            nvml.nvmlInit()
        except Exception:  # no driver, no GPU: NVMLError_LibraryNotFound, _DriverNotLoaded, ...
            return None
        try:
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        except Exception:
            with contextlib.suppress(Exception):
                nvml.nvmlShutdown()
            return None
        return cls(nvml, handles)

    def sample(self) -> dict[str, float]:
        nvml, out = self._nvml, {}
        for i, h in enumerate(self._handles):
            p = f"system/gpu{i}_"
            # Each reading on its own: a GPU may not support one (power on some boards).
            with contextlib.suppress(Exception):
                out[p + "utilization_percent"] = float(nvml.nvmlDeviceGetUtilizationRates(h).gpu)
            with contextlib.suppress(Exception):
                mem = nvml.nvmlDeviceGetMemoryInfo(h)
                out[p + "memory_used_mb"] = mem.used / MB
                out[p + "memory_percent"] = 100.0 * mem.used / mem.total
            with contextlib.suppress(Exception):
                watts = nvml.nvmlDeviceGetPowerUsage(h) / 1000.0  # NVML reports milliwatts
                out[p + "power_watts"] = watts
                out[p + "power_percent"] = 100.0 * watts * 1000.0 / nvml.nvmlDeviceGetEnforcedPowerLimit(h)
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._nvml.nvmlShutdown()


class Probe:
    """Reads the machine's counters; each ``sample()`` covers the time since the previous one.

    Rates (CPU percent) are measured between two samples; disk and network traffic are counted
    from the probe's creation (cumulative megabytes, like MLflow's). A counter the OS does not
    have is left out of the sample.

    Args:
        proc: the procfs mount (another folder in tests).
        sys_block: the sysfs folder listing whole disks, so partitions are not counted twice.
        disk_path: the file system whose usage is reported (default: the working directory).
        gpu: read GPUs through NVML when it is available.
    """

    def __init__(
        self,
        *,
        proc: str = "/proc",
        sys_block: str = "/sys/block",
        disk_path: str | None = None,
        gpu: bool = True,
    ) -> None:
        self._proc = proc
        self._sys_block = sys_block
        if disk_path is None:
            try:
                disk_path = os.getcwd()
            except OSError:  # the working directory was deleted: report the root file system
                disk_path = os.sep
        self._disk_path = disk_path
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._cpu_prev = self._cpu_times()
        self._proc_prev = (time.monotonic(), time.process_time())
        self._net0 = self._network_bytes()
        self._disk0 = self._disk_io_bytes()
        self._gpu = _Nvml.open() if gpu else None

    def _cpu_times(self) -> tuple[float, float] | None:
        """(busy, total) jiffies of all CPUs from /proc/stat, or None."""
        try:
            fields = [float(x) for x in _read(f"{self._proc}/stat").split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        total = sum(fields[:8])  # user..steal; guest time is already counted in user
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        return total - idle, total

    def _network_bytes(self) -> tuple[float, float] | None:
        """(received, transmitted) bytes over all interfaces but loopback, or None."""
        try:
            lines = _read(f"{self._proc}/net/dev").splitlines()[2:]
            rx = tx = 0.0
            for line in lines:
                name, _, data = line.partition(":")
                if name.strip() == "lo":
                    continue
                cols = data.split()
                rx, tx = rx + float(cols[0]), tx + float(cols[8])
        except (OSError, ValueError, IndexError):
            return None
        return rx, tx

    def _disk_io_bytes(self) -> tuple[float, float] | None:
        """(read, written) bytes of whole disks from /proc/diskstats, or None."""
        try:
            disks = {d for d in os.listdir(self._sys_block) if not d.startswith(("loop", "ram", "zram"))}
            read = written = 0.0
            for line in _read(f"{self._proc}/diskstats").splitlines():
                cols = line.split()
                if len(cols) >= 10 and cols[2] in disks:
                    # Sectors are 512 bytes in this file whatever the device's sector size.
                    read, written = read + float(cols[5]) * 512, written + float(cols[9]) * 512
        except (OSError, ValueError):
            return None
        return read, written

    def _cpu(self) -> dict[str, float]:
        out = {}
        now = self._cpu_times()
        prev, self._cpu_prev = self._cpu_prev, now
        if now is not None and prev is not None and now[1] > prev[1]:
            out["system/cpu_percent"] = 100.0 * (now[0] - prev[0]) / (now[1] - prev[1])
        wall, cpu = time.monotonic(), time.process_time()
        (wall0, cpu0), self._proc_prev = self._proc_prev, (wall, cpu)
        if wall > wall0:
            # This process, as % of one core (like top): CPU time over wall time.
            out["system/cpu_process_percent"] = 100.0 * (cpu - cpu0) / (wall - wall0)
        return out

    def _memory(self) -> dict[str, float]:
        info = {}
        for line in _read(f"{self._proc}/meminfo").splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                info[key] = float(rest.split()[0]) * 1024  # reported in kB
        total, available = info["MemTotal"], info["MemAvailable"]
        out = {
            "system/memory_percent": 100.0 * (total - available) / total,
            "system/memory_used_mb": (total - available) / MB,
            "system/memory_available_mb": available / MB,
        }
        with contextlib.suppress(OSError, ValueError, IndexError):
            rss_pages = float(_read(f"{self._proc}/self/statm").split()[1])
            out["system/memory_process_mb"] = rss_pages * self._page / MB
        return out

    def _disk(self) -> dict[str, float]:
        import shutil  # here: it costs milliseconds to import, and only samplers need it

        out = {}
        with contextlib.suppress(OSError):
            usage = shutil.disk_usage(self._disk_path)
            out["system/disk_percent"] = 100.0 * usage.used / usage.total
            out["system/disk_used_gb"] = usage.used / GB
            out["system/disk_free_gb"] = usage.free / GB
        now = self._disk_io_bytes()
        if now is not None and self._disk0 is not None:
            out["system/disk_read_mb"] = (now[0] - self._disk0[0]) / MB
            out["system/disk_write_mb"] = (now[1] - self._disk0[1]) / MB
        return out

    def _network(self) -> dict[str, float]:
        now = self._network_bytes()
        if now is None or self._net0 is None:
            return {}
        return {
            "system/network_receive_mb": (now[0] - self._net0[0]) / MB,
            "system/network_transmit_mb": (now[1] - self._net0[1]) / MB,
        }

    def sample(self) -> dict[str, float]:
        """The metrics of this moment (name -> value); what the OS lacks is left out."""
        out: dict[str, float] = {}
        parts = [self._cpu, self._memory, self._disk, self._network]
        if self._gpu is not None:
            parts.append(self._gpu.sample)
        for part in parts:
            # A counter this OS lacks (no /proc on macOS or Windows): skip it, never fail a run.
            with contextlib.suppress(OSError, ValueError, KeyError, IndexError, ZeroDivisionError):
                out.update(part())
        return out

    def close(self) -> None:
        """Release NVML (if it was opened)."""
        if self._gpu is not None:
            self._gpu.close()


# -- the sampling thread ------------------------------------------------------------------------
class Sampler:
    """A daemon thread logging ``Probe`` samples to one run every ``interval`` seconds.

    It logs through a ``Client`` over the run's store with an explicit ``run=``, so
    it never depends on which run is current in any thread. ``samples`` and ``cpu_seconds`` (the
    thread's own CPU time spent reading and writing) are kept for the benchmark.
    """

    def __init__(self, store: Any, run_id: str, interval: float) -> None:
        self.store = store
        self.run_id = run_id
        self.interval = interval
        self.samples = 0
        self.cpu_seconds = 0.0
        self.error: BaseException | None = None  # why it stopped by itself (a refused write)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"chachaml-system-metrics-{run_id[:12]}", daemon=True
        )

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the thread, waiting for a sample being written (never from the thread itself)."""
        self._stop.set()
        if threading.current_thread() is not self._thread and self._thread.ident is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        from chachaml.client import Client  # here: only a sampling run pays for it

        client = Client(self.store)  # over the run's store, which it leaves open
        probe = None
        try:
            probe = Probe()
            due = time.monotonic() + min(FIRST_SAMPLE_S, self.interval)
            while not self._stop.wait(max(0.0, due - time.monotonic())):
                t0 = time.thread_time()
                metrics = probe.sample()
                if metrics:
                    client.log_metrics(metrics, run=self.run_id)
                self.cpu_seconds += time.thread_time() - t0
                self.samples += 1
                # Fixed ticks, but after a stall (a suspended laptop) skip ahead, no burst.
                due = max(due + self.interval, time.monotonic())
        except Exception as exc:  # the run was ended elsewhere or its store closed: stop quietly
            self.error = exc
        finally:
            if probe is not None:
                probe.close()
            with _lock:
                if _samplers.get(self.run_id) is self:
                    del _samplers[self.run_id]


# Samplers by run id. Mutable module state outside context.py (STYLE.md), on purpose: it is a
# registry of threads, not run context, and a lock guards it (docs/adr/0009).
_samplers: dict[str, Sampler] = {}
_lock = threading.Lock()
_atexit_installed = False


def start(request: Request | None, store: Any, run: Any) -> Sampler | None:
    """Start sampling into ``run`` as ``request`` says (None: nothing to do); see ``requested``."""
    global _atexit_installed
    if request is None or (not request.explicit and run.parent_id is not None):
        return None
    with _lock:
        found = _samplers.get(run.id)
        if found is not None and found.alive:
            return found
        sampler = _samplers[run.id] = Sampler(store, run.id, request.interval)
        if not _atexit_installed:
            # Registered after the exit hook that ends open runs (installed when the first run
            # opened), so it runs first: samplers stop before their runs are ended.
            atexit.register(_stop_all)
            _atexit_installed = True
    return sampler.start()


def stop(run_id: str | None) -> None:
    """Stop the sampler of ``run_id``, if it has one (end_run and with_run call this)."""
    if not _samplers:  # the usual case: no sampler anywhere, no lock taken
        return
    with _lock:
        sampler = _samplers.pop(run_id or "", None)
    if sampler is not None:
        sampler.stop()


def running(run_id: str) -> Sampler | None:
    """The sampler logging into ``run_id`` now, or None."""
    with _lock:
        return _samplers.get(run_id)


def _stop_all() -> None:
    with _lock:
        samplers = list(_samplers.values())
        _samplers.clear()
    for sampler in samplers:
        sampler.stop()
