"""Saves per second from 1, 4 and 8 processes on SQLite and PostgreSQL.

Usage::

    python benchmarks/storage_load.py [--procs 1,4,8] [--seconds 4] [--rounds 2]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres] [--no-postgres]

Each configuration (database x process count x naming) gets a fresh store:
a new SQLite file, or a new PostgreSQL database created on the server and
dropped afterwards; values go to a fresh local folder.  Worker processes
(``multiprocessing`` spawn) import ``lineapy_ext``, open the store, wait on a
barrier, then call ``lineapy_ext.save(small_value, name)`` in a loop for
``--seconds``; throughput = all saves / (last finish - common start).  Two
namings: ``distinct`` (one artifact name per process) and ``shared`` (all
processes save versions of the same name, so they contend for the next
version number).  Afterwards the versions are checked: every save got its
own version, 1..N without gaps or duplicates, and a save error is counted.

The machine has 2 cores, so 4 and 8 processes measure contention (locks,
retries) more than parallel speed-up.  Configurations alternate between
rounds; the table shows the median over rounds.
Writes ``benchmarks/results/storage_load.json``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import isolated_env, median, table, write_results

ADMIN_URL = os.environ.get("LINEAPY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _apply_env(env: dict) -> None:
    for k in list(os.environ):
        if k.startswith("LINEAPY_"):
            del os.environ[k]
    os.environ.update(env)


def worker(env: dict, name: str, seconds: float, barrier, queue) -> None:
    _apply_env(env)
    import lineapy_ext

    lineapy_ext.artifact_store()  # open the store (create tables) before the clock starts
    value = {"n": 1, "xs": list(range(10)), "label": "small"}
    errors = []
    barrier.wait()
    start = time.time()
    n = 0
    deadline = start + seconds
    while time.time() < deadline:
        try:
            lineapy_ext.save(value, name)
            n += 1
        except Exception as e:  # counted and reported, not hidden
            errors.append(f"{type(e).__name__}: {e}"[:300])
    queue.put({"saves": n, "start": start, "end": time.time(), "errors": errors})


def verify(env: dict, names: list[str], queue) -> None:
    _apply_env(env)
    from lineapy_ext.context import get_context

    db = get_context().store.db
    queue.put({n: db.versions(n) for n in names})


def run_config(env: dict, nprocs: int, naming: str, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(nprocs)
    queue = ctx.Queue()
    names = [f"w{i}" if naming == "distinct" else "shared" for i in range(nprocs)]
    procs = [ctx.Process(target=worker, args=(env, names[i], seconds, barrier, queue)) for i in range(nprocs)]
    for p in procs:
        p.start()
    outs = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    q2 = ctx.Queue()
    v = ctx.Process(target=verify, args=(env, sorted(set(names)), q2))
    v.start()
    versions = q2.get(timeout=120)
    v.join()
    total = sum(o["saves"] for o in outs)
    wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    versions_ok = all(sorted(vs) == list(range(1, len(vs) + 1)) for vs in versions.values()) and \
        sum(len(vs) for vs in versions.values()) == total
    errors = [e for o in outs for e in o["errors"]]
    return {"saves": total, "seconds": wall, "saves_per_s": total / wall, "per_process": [o["saves"] for o in outs],
            "errors": len(errors), "error_examples": errors[:3], "versions_ok": versions_ok}


class Store:
    """A fresh store per configuration: SQLite file or PostgreSQL database."""

    def __init__(self, kind: str, root: Path, admin_url: str):
        self.kind, self.root, self.admin_url = kind, root, admin_url
        self.dbname = None

    def __enter__(self) -> dict:
        d = Path(tempfile.mkdtemp(dir=self.root))
        env = isolated_env(d)
        env.pop("PYTHONPATH", None)
        env = {k: v for k, v in env.items() if k.startswith("LINEAPY_")}
        if self.kind == "postgresql":
            import psycopg

            self.dbname = f"lineapy_bench_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(self.admin_url, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{self.dbname}"')
            base = self.admin_url.rsplit("/", 1)[0]
            env["LINEAPY_DATABASE_URL"] = f"{base}/{self.dbname}"
        self.dir = d
        return env

    def __exit__(self, *exc):
        if self.dbname:
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        shutil.rmtree(self.dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--procs", default="1,4,8")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--postgres", default=ADMIN_URL, help="admin URL of a PostgreSQL server")
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    procs = [int(p) for p in args.procs.split(",")]
    dbs = ["sqlite"]
    if not args.no_postgres:
        try:
            import psycopg

            psycopg.connect(args.postgres, connect_timeout=5).close()
            dbs.append("postgresql")
        except Exception as e:
            print(f"PostgreSQL not reachable at {args.postgres}: {e}; measuring SQLite only")
    root = Path(tempfile.mkdtemp(prefix="lineapy-bench-load-"))
    configs = [(db, n, naming) for db in dbs for n in procs for naming in ("distinct", "shared")]
    raw: dict = {}
    try:
        for rnd in range(args.rounds):
            for cfg in (configs if rnd % 2 == 0 else configs[::-1]):
                db, n, naming = cfg
                with Store(db, root, args.postgres) as env:
                    r = run_config(env, n, naming, args.seconds)
                raw.setdefault(cfg, []).append(r)
                print(f"  round {rnd + 1}: {db:10s} {n} proc {naming:8s} {r['saves_per_s']:7.1f} saves/s"
                      f"{'' if r['versions_ok'] else '  VERSIONS WRONG'}{'  errors: %d' % r['errors'] if r['errors'] else ''}",
                      flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows, results = [], []
    for cfg in configs:
        rs = raw[cfg]
        db, n, naming = cfg
        sps = median([r["saves_per_s"] for r in rs])
        entry = {"database": db, "processes": n, "naming": naming, "median_saves_per_s": sps,
                 "rounds": rs, "errors": sum(r["errors"] for r in rs),
                 "versions_ok": all(r["versions_ok"] for r in rs)}
        results.append(entry)
        rows.append([db, n, naming, sps, sps / n, entry["errors"], "yes" if entry["versions_ok"] else "NO"])
    print()
    print(table(["database", "procs", "names", "saves/s", "per proc", "errors", "versions ok"], rows))
    path = write_results("storage_load", {"seconds_per_run": args.seconds, "rounds": args.rounds,
                                          "value": "dict with 12 small items (about 100 bytes pickled)",
                                          "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
