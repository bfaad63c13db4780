"""A monitor *process* beside the cell: NVML memory every 10 ms, RSS timeline, energy, per phase.

A process, not a thread, so sampling never holds the cell's GIL. The cell starts the
measured block only after the monitor says it is ready, marks phases with a handshake,
and stops it with a handshake: ``conn.poll(interval)`` is both the monitor's sleep and
its stop signal, so nobody busy-waits.
Without NVML or a GPU it still records the RSS timeline, at a slower pace, and says
why NVML figures are missing.
A cell on several GPUs passes all their UUIDs: memory is summed over them (nvml.combine_samples)
and each GPU's own peak is kept (``nvml_process_peak_bytes_per_gpu``, in the order given).
A Tracker (zobench/api.py) of its own; in a cell, PhaseMemory composes it (the headline peak
needs the monitor's per-phase NVML figures).
Usage: ``m = Monitor.launch(os.getpid(), uuid); m.phase("train"); stats = m.stop()``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from typing import Any

from zobench.api import Measured, PhaseTracker, TrackerContext

NVML_INTERVAL_S = 0.01
RSS_INTERVAL_S = 0.1  # the timeline only; also the pace when there is no NVML to poll
PID_REFRESH_S = 1.0  # listing children scans /proc: too costly to do every 10 ms


def _max(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


class _Sampler:
    """Runs inside the monitor process."""

    def __init__(self, pid: int, uuid: str | list[str] | None):
        import psutil

        self.root = psutil.Process(pid)
        self.handles, self.nvml_reason = [], "no GPU UUID given (CPU cell)"
        uuids = [uuid] if isinstance(uuid, str) else list(uuid or [])
        if uuids:
            try:
                from zobench.measure.nvml import open_handle

                self.handles, self.nvml_reason = [open_handle(u) for u in uuids], None
            except Exception as exc:
                self.nvml_reason = f"NVML not available: {type(exc).__name__}: {exc}"
        self.handle = self.handles[0] if self.handles else None
        self.pids: set[int] = set()
        self.pids_at = 0.0
        self.phases: dict[str, dict[str, Any]] = {}
        self.timeline: list[list] = []
        self.foreign: set[int] = set()
        self.process_seen = False
        self.t0 = time.monotonic()
        self.phase = "init"
        self.energy_at_phase_start = self._energy()
        self.cpu_at_phase_start = time.process_time()
        self.baseline: dict[str, Any] = {}
        self.procs: dict[int, Any] = {}
        self.cpu_marks = self._cpu_marks()

    def _cpu_marks(self) -> dict[str, Any]:
        """System busy CPU seconds, the cell tree's per pid (the monitor's own included), and the time."""
        import psutil

        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        tree = {os.getpid(): time.process_time()}
        for pid in self._our_pids():
            try:
                c = psutil.Process(pid).cpu_times()
                tree[pid] = c.user + c.system
            except psutil.Error:
                pass
        return {"busy": busy, "tree": tree, "at": time.monotonic()}

    def _close_cpu(self, stats: dict[str, Any]) -> None:
        """Other processes' CPU seconds in the phase that ends: system busy time minus the cell tree's."""
        before, after = self.cpu_marks, self._cpu_marks()
        own = sum(after["tree"].get(pid, cpu) - before["tree"].get(pid, 0.0) for pid, cpu in after["tree"].items())
        stats["other_cpu_s"] = stats.get("other_cpu_s", 0.0) + max(after["busy"] - before["busy"] - own, 0.0)
        stats["wall_s"] = stats.get("wall_s", 0.0) + after["at"] - before["at"]
        self.cpu_marks = after

    def _energy(self) -> int | None:
        if self.handle is None:
            return None
        from zobench.measure.nvml import read_energy_mj

        energies = [read_energy_mj(h) for h in self.handles]
        return None if any(e is None for e in energies) else sum(energies)

    def _our_pids(self) -> set[int]:
        now = time.monotonic()
        if now - self.pids_at > PID_REFRESH_S:
            import psutil

            try:
                kids = {p.pid for p in self.root.children(recursive=True)}
            except psutil.Error:
                kids = set()
            self.pids = ({self.root.pid} | kids) - {os.getpid()}
            self.pids_at = now
        return self.pids

    def _rss(self) -> int:
        import psutil

        total = 0
        for pid in self._our_pids():
            try:
                if pid not in self.procs:
                    self.procs[pid] = psutil.Process(pid)
                total += self.procs[pid].memory_info().rss
            except psutil.Error:
                self.procs.pop(pid, None)
        return total

    def sample_gpu(self) -> None:
        if self.handle is None:
            return
        from zobench.measure.nvml import combine_samples, read_memory

        pids = self._our_pids()
        s = combine_samples([read_memory(h, pids) for h in self.handles])
        self.process_seen |= s["process_bytes"] is not None
        self.foreign.update(s["foreign_pids"])
        stats = self.phases.setdefault(self.phase, {})
        if len(self.handles) > 1:
            peaks = stats.get("nvml_process_peak_bytes_per_gpu") or [None] * len(self.handles)
            stats["nvml_process_peak_bytes_per_gpu"] = [_max(a, b) for a, b in zip(peaks, s["per_gpu"])]
        stats["nvml_process_peak_bytes"] = _max(stats.get("nvml_process_peak_bytes"), s["process_bytes"])
        stats["nvml_device_used_peak_bytes"] = _max(stats.get("nvml_device_used_peak_bytes"), s["device_used_bytes"])
        if not self.baseline:
            self.baseline = {"nvml_process_bytes": s["process_bytes"], "nvml_device_used_bytes": s["device_used_bytes"]}

    def sample_rss(self) -> None:
        rss = self._rss()
        self.timeline.append([round(time.monotonic() - self.t0, 3), self.phase, rss])
        stats = self.phases.setdefault(self.phase, {})
        stats["rss_sampled_peak_bytes"] = _max(stats.get("rss_sampled_peak_bytes"), rss)

    def enter(self, phase: str) -> None:
        self.sample_gpu()  # close the old phase with a fresh sample
        energy = self._energy()
        if energy is not None and self.energy_at_phase_start is not None:
            stats = self.phases.setdefault(self.phase, {})
            stats["energy_j"] = stats.get("energy_j", 0.0) + (energy - self.energy_at_phase_start) / 1000
        self.energy_at_phase_start = energy
        cpu = time.process_time()  # the monitor's own cost in the phase that ends
        stats = self.phases.setdefault(self.phase, {})
        self._close_cpu(stats)
        stats["monitor_cpu_s"] = stats.get("monitor_cpu_s", 0.0) + cpu - self.cpu_at_phase_start
        self.cpu_at_phase_start = cpu
        self.phase = phase
        self.sample_gpu()
        self.sample_rss()

    def result(self) -> dict[str, Any]:
        return {
            "nvml_available": self.handle is not None,
            "nvml_reason": self.nvml_reason,
            "nvml_process_seen": self.process_seen,
            "baseline": self.baseline,
            "phases": self.phases,
            "rss_timeline": self.timeline,
            "foreign_gpu_pids": sorted(self.foreign),
            # The monitor's own cost: CPU seconds it burned over its lifetime. Divided by the
            # wall time, it bounds the share of one core it took from the measured run.
            "monitor_cpu_s": time.process_time(),
            "monitor_wall_s": time.monotonic() - self.t0,
        }


def _monitor_main(conn, pid: int, uuid: str | list[str] | None) -> None:
    sampler = _Sampler(pid, uuid)
    interval = NVML_INTERVAL_S if sampler.handle is not None else RSS_INTERVAL_S
    sampler.sample_gpu()
    sampler.sample_rss()
    conn.send(("ready", {"nvml_available": sampler.handle is not None, "baseline": sampler.baseline}))
    next_rss = time.monotonic() + RSS_INTERVAL_S
    while True:
        if conn.poll(interval):
            try:
                command, arg = conn.recv()
            except EOFError:  # the cell died without stopping us
                return
            if command == "phase":
                sampler.enter(arg)
                conn.send(("ack", None))
            elif command == "stop":
                sampler.enter("done")
                conn.send(("stats", sampler.result()))
                return
        sampler.sample_gpu()
        if time.monotonic() >= next_rss:
            sampler.sample_rss()
            next_rss = time.monotonic() + RSS_INTERVAL_S


class Monitor(PhaseTracker):
    """The cell's handle on its monitor process."""

    def __init__(self, proc, conn, ready: dict[str, Any]):
        self.proc, self.conn, self.ready = proc, conn, ready

    @classmethod
    def launch(cls, pid: int, uuid: str | list[str] | None, timeout_s: float = 60) -> "Monitor":
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_monitor_main, args=(child, pid, uuid), daemon=True)
        proc.start()
        child.close()
        if not parent.poll(timeout_s):
            proc.kill()
            raise RuntimeError("the memory monitor did not report ready")
        kind, ready = parent.recv()
        return cls(proc, parent, ready)

    @classmethod
    def for_cell(cls, context: TrackerContext) -> "Monitor":
        return cls.launch(os.getpid(), context.gpu_uuid)

    def mark(self, phase: str) -> None:
        """Start a new phase; returns once the monitor has attributed its samples to it."""
        self.conn.send(("phase", phase))
        self.conn.recv()

    def stop(self) -> dict[str, Any]:
        self.conn.send(("stop", None))
        _, stats = self.conn.recv()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
        return stats

    # The Tracker protocol: the monitor only watches phases; every figure comes at the end.
    def phase(self, name: str) -> None:
        self.mark(name)

    def finish(self, failed: bool) -> Measured:
        """Its own cost as metrics, the RSS timeline as a series, the raw figures as its section."""
        stats = self.stop()
        return Measured(metrics={"monitor_cpu_s": stats["monitor_cpu_s"], "monitor_wall_s": stats["monitor_wall_s"]},
                        details={"monitor": {k: v for k, v in stats.items() if k != "rss_timeline"}},
                        series={"rss": stats["rss_timeline"]})
