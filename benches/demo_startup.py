"""How fast the demo fleet comes up, what it costs, and how fast it answers a fan-out.

    python benches/demo_startup.py --hosts 500

Starts ``serve_main(N)`` in its own process (as ``canarytui demo --serve`` does), then from
this process: one asyncssh connection per host and ``cat current/VERSION`` on all of them
(semaphore 50), optionally a three-step release to every host, then Ctrl-C. Prints the
time to the env file's path, the fleet's own start-up time, the fleet process's RSS and
CPU, and the fan-out timings.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import canarytui  # noqa: F401 (first: it quiets asyncssh's DSA warnings)

# isort: split
import asyncssh

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from canarytui.config import load_env  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    # Fields 14 and 15 of /proc/PID/stat: user and system time in clock ticks.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_share(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds * 100


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--parallel", type=int, default=50)
    parser.add_argument(
        "--no-release", action="store_true", help="skip the release of 1.1.0 to every host"
    )
    args = parser.parse_args()

    state = tempfile.mkdtemp(prefix="canarytui-bench-state-")
    env = {
        **os.environ,
        "CANARYTUI_STATE_DIR": state,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    began = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        f"from canarytui.demo import serve_main; raise SystemExit(serve_main({args.hosts}))",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    try:
        env_path = Path((await asyncio.wait_for(proc.stdout.readline(), 120)).decode().strip())
        to_path = time.perf_counter() - began
        summary = (await proc.stdout.readline()).decode()
        match = re.search(r"up in ([\d.]+) s", summary)
        inner = float(match.group(1)) if match else float("nan")
        demo = load_env(env_path)
        print(f"hosts:                         {len(demo.hosts)}")
        print(f"spawn -> env path printed:     {to_path:.2f} s (interpreter, imports, fleet)")
        print(f"fleet start-up (in process):   {inner:.2f} s")
        await asyncio.sleep(2)  # let every app tick once before measuring the steady state
        print(f"fleet RSS, idle:               {rss_mb(proc.pid):.0f} MB")
        print(f"fleet CPU, idle (apps ticking):{await cpu_share(proc.pid, 5):5.1f} % of one core")

        sem = asyncio.Semaphore(args.parallel)
        key = str(env_path.parent / "keys" / "id_ed25519")
        known_hosts = str(env_path.parent / "known_hosts")

        async def connect(port: int) -> asyncssh.SSHClientConnection:
            async with sem:
                return await asyncssh.connect(
                    "127.0.0.1",
                    port=port,
                    username="demo",
                    client_keys=[key],
                    known_hosts=known_hosts,
                    connect_timeout=30,
                )

        t = time.perf_counter()
        conns = await asyncio.gather(*(connect(h.port) for h in demo.hosts))
        connect_time = time.perf_counter() - t

        async def run(conn: asyncssh.SSHClientConnection, command: str) -> str:
            async with sem:
                result = await conn.run(command, check=True, timeout=60)
                return str(result.stdout)

        t = time.perf_counter()
        versions = await asyncio.gather(*(run(c, "cat current/VERSION") for c in conns))
        cat_time = time.perf_counter() - t
        assert {v.strip() for v in versions} == {"1.0.0"}, set(versions)
        print(f"connect to all (sem {args.parallel}):      {connect_time:.2f} s")
        print(f"cat current/VERSION on all:    {cat_time:.2f} s (connections open)")
        print(f"  together:                    {connect_time + cat_time:.2f} s")
        print(f"fleet RSS, {len(conns)} sessions open:  {rss_mb(proc.pid):.0f} MB")

        if not args.no_release:
            steps = [s.run.replace("{version}", shlex.quote("1.1.0")) for s in demo.deploy.steps]

            async def release(conn: asyncssh.SSHClientConnection) -> None:
                async with sem:
                    for command in steps:
                        await conn.run(command, check=True, timeout=60)

            t = time.perf_counter()
            await asyncio.gather(*(release(c) for c in conns))
            release_time = time.perf_counter() - t
            versions = await asyncio.gather(*(run(c, "cat current/VERSION") for c in conns))
            assert {v.strip() for v in versions} == {"1.1.0"}, set(versions)
            print(
                f"release 1.1.0, 3 steps, all:   {release_time:.2f} s "
                "(install sleeps 0.2 s per host)"
            )

        for conn in conns:
            conn.close()
        t = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), 60)
        print(
            f"Ctrl-C -> exit {code}:             {time.perf_counter() - t:.2f} s, "
            f"temp folder removed: {not env_path.parent.exists()}"
        )
        return 0 if code == 0 else 1
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
