"""System metrics (issue 11 part 5): a daemon thread samples the machine into the run.

Real threads, real /proc, real SQLite files; short intervals and polls with a deadline, never a
sleep as synchronisation and never an assertion on how long something took.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

import chachaml
from chachaml import system_metrics
from chachaml.system_metrics import Probe

T = TypeVar("T")
FAMILIES = ["system/cpu", "system/memory", "system/disk", "system/network"]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")


def wait_for(probe: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def system_keys(run_id: str) -> set[str]:
    return {k for k in chachaml.get_run(run_id).metrics if k.startswith("system/")}


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("chachaml-system-metrics")]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHACHAML_SYSTEM_METRICS", raising=False)
    monkeypatch.delenv("CHACHAML_SYSTEM_METRICS_INTERVAL", raising=False)


@linux_only
def test_start_run_samples_every_family_repeatedly_and_end_run_stops_the_thread() -> None:
    chachaml.use_store("t.db")
    run = chachaml.start_run("train", system_metrics=0.05)
    sampler = system_metrics.running(run.id)
    assert sampler is not None and sampler.alive and sampler.interval == 0.05

    def every_family_twice() -> bool:
        keys = system_keys(run.id)
        return all(any(k.startswith(f) for k in keys) for f in FAMILIES) and (
            len(chachaml.metric_history(run.id, "system/memory_percent")) >= 2
        )

    wait_for(every_family_twice, "two samples of every family")
    keys = system_keys(run.id)
    for key in ["system/cpu_percent", "system/memory_percent", "system/disk_percent"]:
        assert key in keys
    assert 0.0 <= chachaml.get_run(run.id).metrics["system/memory_percent"] <= 100.0

    chachaml.end_run()
    assert not sampler.alive, "end_run must stop (and join) the sampler"
    assert system_metrics.running(run.id) is None
    assert sampler_threads() == []
    assert sampler.error is None
    assert chachaml.get_run(run.id).status == "completed"


def test_with_run_stops_its_sampler_on_exit_also_when_the_block_raises() -> None:
    chachaml.use_store("t.db")
    with chachaml.with_run("ok", system_metrics=0.05) as run:
        sampler = system_metrics.running(run.id)
        assert sampler is not None
        wait_for(lambda: sampler.samples >= 1, "a first sample")
    assert not sampler.alive

    with pytest.raises(ZeroDivisionError), chachaml.with_run("boom", system_metrics=0.05) as bad:
        failing = system_metrics.running(bad.id)
        assert failing is not None
        1 / 0  # noqa: B018
    assert not failing.alive
    assert chachaml.get_run(bad.id).status == "failed"
    assert sampler_threads() == []


def test_the_environment_switches_it_on_for_top_level_runs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    chachaml.use_store("t.db")
    monkeypatch.setenv("CHACHAML_SYSTEM_METRICS", "1")
    monkeypatch.setenv("CHACHAML_SYSTEM_METRICS_INTERVAL", "0.05")
    with chachaml.with_run("parent") as parent:
        sampler = system_metrics.running(parent.id)
        assert sampler is not None and sampler.interval == 0.05
        child = chachaml.start_run("child")
        assert child.parent_id == parent.id
        assert system_metrics.running(child.id) is None, "a child runs on the machine its parent samples"
        explicit = chachaml.start_run("explicit child", system_metrics=0.05)
        assert system_metrics.running(explicit.id) is not None, "an explicit request always counts"
        chachaml.end_run()
        chachaml.end_run()
        wait_for(lambda: "system/memory_percent" in system_keys(parent.id), "a sample from the env")
    assert sampler_threads() == []
    off = chachaml.start_run("off", system_metrics=False)
    assert system_metrics.running(off.id) is None
    chachaml.end_run()


def test_off_by_default_no_thread_and_no_system_metric() -> None:
    chachaml.use_store("t.db")
    with chachaml.with_run("plain") as run:
        assert system_metrics.running(run.id) is None
        assert sampler_threads() == []
        chachaml.log_metric("loss", 1.0)
    assert system_keys(run.id) == set()


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, "yes", [1], 1j])
def test_a_bad_system_metrics_value_is_refused_before_any_run_is_opened(bad: object) -> None:
    chachaml.use_store("t.db")
    with pytest.raises(chachaml.InvalidValueError, match="system_metrics"):
        chachaml.start_run("x", system_metrics=bad)  # type: ignore[arg-type]
    with (
        pytest.raises(chachaml.InvalidValueError, match="system_metrics"),
        chachaml.with_run(
            "y",
            system_metrics=bad,  # type: ignore[arg-type]
        ),
    ):
        pass
    assert chachaml.current_run() is None
    assert len(chachaml.runs()) == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [("CHACHAML_SYSTEM_METRICS", "maybe"), ("CHACHAML_SYSTEM_METRICS_INTERVAL", "soon")],
)
def test_a_malformed_environment_variable_names_itself_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    chachaml.use_store("t.db")
    monkeypatch.setenv("CHACHAML_SYSTEM_METRICS", "1")
    monkeypatch.setenv(name, value)
    with pytest.raises(chachaml.InvalidValueError, match=name) as err:
        chachaml.start_run("x")
    assert repr(value) in str(err.value)
    assert len(chachaml.runs()) == 0


def test_the_first_sample_comes_long_before_one_default_interval() -> None:
    """With a 60 s interval the first sample still comes after about a second (FIRST_SAMPLE_S):
    the poll's 30 s deadline could not be met by a sampler that waits one interval first."""
    chachaml.use_store("t.db")
    with chachaml.with_run("slow ticks", system_metrics=60.0) as run:
        sampler = system_metrics.running(run.id)
        assert sampler is not None
        wait_for(lambda: sampler.samples >= 1, "the first sample")
        assert sampler.samples == 1
    assert system_keys(run.id)


def test_a_run_ended_another_way_stops_its_sampler_at_the_next_refused_write() -> None:
    store = chachaml.use_store("t.db")
    # with_store ends the runs started inside it and left open, without end_run.
    with chachaml.with_store(store):
        run = chachaml.start_run("left open", system_metrics=0.05)
        sampler = system_metrics.running(run.id)
        assert sampler is not None
    assert chachaml.get_run(run.id).status == "completed"
    wait_for(lambda: not sampler.alive, "the sampler to stop by itself")
    assert isinstance(sampler.error, chachaml.RunStateError)
    assert system_metrics.running(run.id) is None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("ending", "status", "code"), [("", "completed", 0), ("import sys; sys.exit(3)", "failed", 3)]
)
def test_process_exit_stops_the_sampler_and_ends_the_run(
    tmp_path: Path, ending: str, status: str, code: int
) -> None:
    db = tmp_path / "exit.db"
    script = textwrap.dedent(
        f"""
        import time, chachaml
        chachaml.use_store({str(db)!r})
        run = chachaml.start_run("script", system_metrics=0.05)
        deadline = time.monotonic() + 30
        while "system/memory_percent" not in chachaml.get_run(run.id).metrics:
            assert time.monotonic() < deadline, "no sample"
            time.sleep(0.01)
        print(run.id, flush=True)
        {ending}
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception" not in proc.stderr, proc.stderr
    chachaml.use_store(db)
    run = chachaml.get_run(proc.stdout.split()[0])
    assert run.status == status
    assert "system/memory_percent" in run.metrics


def _fake_proc(root: Path, *, busy: int, idle: int, rx: int, sectors_read: int) -> None:
    (root / "net").mkdir(parents=True, exist_ok=True)
    (root / "self").mkdir(exist_ok=True)
    # cpu user nice system idle iowait irq softirq steal guest guest_nice
    (root / "stat").write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 7 0\ncpu0 1 2 3 4\n")
    (root / "meminfo").write_text("MemTotal:       1000 kB\nMemFree:  100 kB\nMemAvailable:    250 kB\n")
    (root / "self" / "statm").write_text("999 256 0 0 0 0 0\n")
    (root / "net" / "dev").write_text(
        "Inter-|   Receive  |  Transmit\n face |bytes packets|bytes\n"
        f"    lo: 5000 1 0 0 0 0 0 0 5000 1 0 0 0 0 0 0\n"
        f"  eth0: {rx} 1 0 0 0 0 0 0 {2 * rx} 1 0 0 0 0 0 0\n"
    )
    (root / "diskstats").write_text(
        f"   8       0 sda 1 0 {sectors_read} 0 1 0 {2 * sectors_read} 0 0 0 0\n"
        f"   8       1 sda1 1 0 {sectors_read} 0 1 0 {2 * sectors_read} 0 0 0 0\n"
        f"   7       0 loop0 1 0 99999 0 1 0 99999 0 0 0 0\n"
    )


def test_probe_reads_procfs_rates_and_traffic_since_its_start(tmp_path: Path) -> None:
    proc, block = tmp_path / "proc", tmp_path / "block"
    (block / "sda").mkdir(parents=True)
    (block / "loop0").mkdir()
    _fake_proc(proc, busy=100, idle=100, rx=1024 * 1024, sectors_read=2048)
    probe = Probe(proc=str(proc), sys_block=str(block), disk_path=str(tmp_path), gpu=False)
    # 300 more busy jiffies and 100 more idle ones: 75% busy; 2 MiB more received, 1 MiB read
    # on the whole disk (the partition and the loop device are not counted).
    _fake_proc(proc, busy=400, idle=200, rx=3 * 1024 * 1024, sectors_read=4096)
    sample = probe.sample()
    assert sample["system/cpu_percent"] == pytest.approx(75.0)
    assert sample["system/memory_percent"] == pytest.approx(75.0)
    assert sample["system/memory_available_mb"] == pytest.approx(250 / 1024)
    assert sample["system/memory_process_mb"] == pytest.approx(256 * probe._page / 1024 / 1024)
    assert sample["system/network_receive_mb"] == pytest.approx(2.0)
    assert sample["system/network_transmit_mb"] == pytest.approx(4.0)
    assert sample["system/disk_read_mb"] == pytest.approx(1.0)
    assert sample["system/disk_write_mb"] == pytest.approx(2.0)
    assert 0 <= sample["system/disk_percent"] <= 100
    assert "system/cpu_process_percent" in sample
    assert not any(k.startswith("system/gpu") for k in sample)


def test_probe_without_procfs_degrades_to_what_the_standard_library_gives(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-proc")
    probe = Probe(proc=missing, sys_block=missing, disk_path=str(tmp_path), gpu=False)
    sample = probe.sample()
    assert set(sample) == {
        "system/cpu_process_percent",
        "system/disk_percent",
        "system/disk_used_gb",
        "system/disk_free_gb",
    }


@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="this machine has an NVIDIA driver")
def test_without_a_gpu_driver_there_are_no_gpu_metrics_and_no_error(tmp_path: Path) -> None:
    """NVML absent (no nvidia-ml-py) or present without a driver: both give no GPU metrics."""
    assert system_metrics._Nvml.open() is None
    probe = Probe(disk_path=str(tmp_path))
    assert not any(k.startswith("system/gpu") for k in probe.sample())
    probe.close()


@linux_only
@pytest.mark.frameworks  # nvidia-ml-py is installed with the frameworks (.ci/run)
@pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="this machine has an NVIDIA driver")
def test_with_nvidia_ml_py_installed_but_no_driver_a_sampled_run_has_no_gpu_metrics_and_no_error() -> None:
    """The real nvidia-ml-py, no mock: its nvmlInit fails on this driverless machine, and a run
    sampled with the gpu extra installed still gets every other family and ends cleanly."""
    from _frameworks import need

    pynvml = need("pynvml")
    with pytest.raises(pynvml.NVMLError):  # the situation under test is real: no driver here
        pynvml.nvmlInit()
    assert system_metrics._Nvml.open() is None
    chachaml.use_store("t.db")
    with chachaml.with_run("train", system_metrics=0.05) as run:
        sampler = system_metrics.running(run.id)
        assert sampler is not None
        wait_for(lambda: len(chachaml.metric_history(run.id, "system/cpu_percent")) >= 2, "two samples")
    assert sampler.error is None, "the sampler thread met no error"
    done = chachaml.get_run(run.id)
    assert done.status == "completed" and done.error is None
    keys = system_keys(run.id)
    assert all(any(k.startswith(f) for k in keys) for f in FAMILIES), keys
    assert not any(k.startswith("system/gpu") for k in keys)
    assert not sampler_threads()
