"""Would an SQLite index on a sorted field make sorted files pages constant-time? (an open point
of RESULTS_web.md). On a copy of a collection's catalog, the first 100 rows of a query sorted by
lufs (what the files page reads) and its count, without and with expression indexes matching the
index's ORDER BY ((lufs IS NULL), lufs [DESC], path), and SQLite's plan.

    python bench/bench_sort_index.py --collection /tmp/bench-web-XXXX/coll   # bench_web.py's collection
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

QUERIES = ("lufs < -20 and snr > 15", "path ~ afs04", "codec = flac", "snr > 1000", None)


def ms(f, repeat=5) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        runs.append(1000 * (time.perf_counter() - t))
    return statistics.median(runs)


def main() -> None:
    from audiotrove.catalog.db import Catalog
    from audiotrove.catalog.index import TABLE, FieldIndex
    from audiotrove.catalog.query import parse_sort

    ap = argparse.ArgumentParser()
    ap.add_argument("--collection", type=Path, required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / ".audiotrove"
        db.mkdir()
        for p in (args.collection / ".audiotrove").glob("catalog.db*"):
            shutil.copy(p, db / p.name)
        with Catalog.open(tmp) as cat:
            idx = FieldIndex.open(cat)
            col = idx.column(idx.fields.resolve("lufs")).split(".", 1)[1]  # no table name in an index
            results = {}
            print("| query, sorted lufs:desc | rows ms without | with index | count ms without | with | plan with |\n"
                  "|---|---|---|---|---|---|")
            for phase in ("without", "with"):
                if phase == "with":
                    t = time.perf_counter()
                    cat.conn.execute(f'CREATE INDEX probe_desc ON {TABLE} (({col} IS NULL), {col} DESC, "path")')
                    cat.conn.execute(f'CREATE INDEX probe_asc ON {TABLE} (({col} IS NULL), {col}, "path")')
                    cat.conn.commit()
                    built = time.perf_counter() - t
                keys = parse_sort("lufs:desc", idx.fields)
                for q in QUERIES:
                    rows = ms(lambda: list(idx.rows(q, sort=keys, limit=100)))
                    count = ms(lambda: idx.count(q))
                    sql, params = idx.where(q)
                    plan = cat.conn.execute(f"EXPLAIN QUERY PLAN SELECT file_id FROM {TABLE} WHERE {sql} ORDER BY "
                                            f"{idx.order_by(keys)} LIMIT 100", params).fetchall()
                    same = list(idx.rows(q, sort=keys, limit=100))
                    results.setdefault(q, {})[phase] = (rows, count, "; ".join(r[-1] for r in plan), same)
            for q, r in results.items():
                assert r["with"][3] == r["without"][3], q  # the index changes no result
                print(f"| {q or '(all)'} | {r['without'][0]:.1f} | {r['with'][0]:.1f} | {r['without'][1]:.1f} | "
                      f"{r['with'][1]:.1f} | {r['with'][2]} |")
            print(f"two indexes built in {built:.2f} s")


if __name__ == "__main__":
    main()
