"""What the benchmark ran on: the machine, the tool versions, the memsift tree and builds."""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import time


def first_line(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True)
        return (p.stdout.strip() or p.stderr.strip()).splitlines()[0]
    except (OSError, IndexError):
        return "n/a"


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def git_state(repo: str) -> str:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True).stdout.rstrip()
        except OSError:
            return ""
    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    branch = git("rev-parse", "--abbrev-ref", "HEAD").strip()
    dirty = [l[3:] for l in git("status", "--porcelain", "--untracked-files=no").splitlines()
             if not l[3:].startswith("tools/bench/")]
    return (f"commit {head}" + (f" ({branch})" if branch and branch != "HEAD" else "")
            + (f", with uncommitted changes to {', '.join(dirty)}" if dirty else ", clean"))


def file_id(path: str) -> str:
    """mtime and sha256 prefix of a file, to pin down which build ran."""
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        return f"built {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(st.st_mtime))} UTC, sha256 {digest}"
    except OSError as e:
        return f"unreadable ({e.strerror})"


def _cpu_and_memory() -> tuple[str, str]:
    cpu = mem = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
        with open("/proc/meminfo") as f:
            kb = next((int(l.split()[1]) for l in f if l.startswith("MemTotal")), None)
            if kb:
                mem = f"{kb / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return cpu, mem


def machine_info(git_start: str, load_start: str, python: str) -> list[str]:
    """Markdown list items: the machine and every tool's version."""
    cpu, mem = _cpu_and_memory()
    has_memray = subprocess.run([python, "-c", "import memray"], capture_output=True).returncode == 0
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- nproc: {os.cpu_count()} (`nproc`: {first_line(['nproc'])})",
        f"- CPU: {cpu}",
        f"- memory: {mem}",
        f"- kernel: {platform.release()} ({platform.machine()})",
        f"- C compiler: {first_line(['cc', '--version'])}; C++: {first_line(['c++', '--version'])}",
        f"- heaptrack: {first_line(['heaptrack', '--version']) if shutil.which('heaptrack') else 'not installed'}",
        f"- sqlite3: {first_line(['sqlite3', '--version']).split(' ')[0] if shutil.which('sqlite3') else 'not installed'}",
        f"- Python of the Python workload: `{python}`, {first_line([python, '--version'])}; memray: "
        + (first_line([python, "-m", "memray", "--version"]) if has_memray else "not importable by it"),
        f"- driver: python {platform.python_version()}",
        f"- memsift tree at the start: {git_start}",
        f"- load average (1/5/15 min) at the start: {load_start}; at the end: {loadavg()}",
    ]
