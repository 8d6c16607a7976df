"""The rest of the machine: how busy it is, waiting for it to be quiet, and which runs it disturbed.

The benchmark runs on shared 2-CPU machines; a tracer whose helper process
(memsift's collector, heaptrack_interpret) works on the second CPU is slowed
down when another process takes it.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
DISTURBED = 0.25  # other CPU / wall above which a run counts as disturbed


def machine_busy_seconds() -> float | None:
    """Busy CPU time of the whole machine so far (/proc/stat: all but idle and iowait), in seconds."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    v = [int(x) for x in fields[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice, already inside user/nice]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK


def disturbed(wall: float, other_cpu: float | None) -> bool:
    """The rest of the machine used more than DISTURBED CPUs on average during a run."""
    return other_cpu is not None and wall > 0 and other_cpu / wall > DISTURBED


@dataclass
class IdleGate:
    """Before each run, waits (up to per_run s, at most budget s in all) until the rest of the machine has used
    less than `threshold` CPUs over a 0.5 s window, so that runs start on a quiet machine when one can be had."""
    per_run: float = 10.0
    budget: float = 60.0
    threshold: float = 0.25
    waited: float = 0.0
    gates: int = 0
    timed_out: int = 0

    def wait(self) -> None:
        if self.per_run <= 0:
            return
        self.gates += 1
        t0 = time.perf_counter()
        while True:
            b0, w0 = machine_busy_seconds(), time.perf_counter()
            time.sleep(0.5)
            b1, w1 = machine_busy_seconds(), time.perf_counter()
            if b0 is None or b1 is None or (b1 - b0) / (w1 - w0) < self.threshold:
                break
            spent = time.perf_counter() - t0
            if spent >= self.per_run or self.waited + spent >= self.budget:
                self.timed_out += 1
                break
        self.waited += max(0.0, time.perf_counter() - t0 - 0.5)

    def describe(self) -> str:
        if self.per_run <= 0:
            return "- idle gate: disabled (IDLE_WAIT=0)"
        return (f"- idle gate: before each run the driver waited until the rest of the machine used < "
                f"{self.threshold} CPU over 0.5 s (at most {self.per_run:g} s per run, {self.budget:g} s in all): "
                f"{self.gates} runs, {self.waited:.1f} s waited beyond the 0.5 s check, {self.timed_out} started "
                "on a busy machine after the wait ran out")
