"""What a row group costs (decision 002): CPU to write the same rows as more or fewer row
groups, and tickvault's bulk load and reads per ``row_group_years``, next to deltalake.

CPU seconds (``time.process_time``: every thread of this process) and wall seconds, medians,
one process, so that a busy machine shifts every row alike. Usage::

    python benchmarks/bench_row_groups.py                   # 2000 x 2520
    python benchmarks/bench_row_groups.py --tickers 200 --bars 1000 --years 3 5
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_storage import TS_US, make_data
from tickvault import ParquetDB


def measure(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    """Median (CPU, wall) seconds of ``n`` calls."""
    cpu, wall = [], []
    for _ in range(n):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall)


def write_groups(t: pa.Table, groups: int) -> None:
    sink = pa.BufferOutputStream()
    step = -(-t.num_rows // groups)
    with pq.ParquetWriter(
        sink,
        t.schema,
        compression="lz4",
        use_dictionary=["ticker"],
        write_statistics=["ticker", "timestamp"],
    ) as w:
        for a in range(0, t.num_rows, step):
            w.write_table(t.slice(a, step), row_group_size=step)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tickers", type=int, default=2000)
    ap.add_argument("--bars", type=int, default=2520)
    ap.add_argument("--years", type=int, nargs="+", default=[3, 5, 0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    data = make_data(args.tickers, args.bars, 0)
    t = data.base
    print("| row groups | write CPU s | write wall s |\n|---:|---:|---:|")
    for g in (args.tickers, 2 * args.tickers, 4 * args.tickers):
        c, w = measure(lambda g=g: write_groups(t, g), args.repeats)
        print(f"| {g} | {c:.2f} | {w:.2f} |")
    last = (data.dates[args.bars - 22], data.dates[args.bars - 1])
    mid = (data.dates[args.bars // 2], data.dates[args.bars // 2 + 21])
    pick = data.tickers[len(data.tickers) // 3]
    root = Path(tempfile.mkdtemp())
    rows = []
    try:
        import deltalake

        deltalake.write_deltalake(
            str(root / "delta"), t.set_column(1, "timestamp", t.column("timestamp").cast(TS_US))
        )
        ds = deltalake.DeltaTable(str(root / "delta")).to_pyarrow_dataset()

        def month(span: tuple[Any, Any]) -> Any:
            f = (pc.field("timestamp") >= pa.scalar(span[0], TS_US)) & (
                pc.field("timestamp") <= pa.scalar(span[1], TS_US)
            )
            return ds.to_table(filter=f).to_pandas()

        load = measure(
            lambda: deltalake.write_deltalake(
                str(root / "d2"),
                t.set_column(1, "timestamp", t.column("timestamp").cast(TS_US)),
                mode="overwrite",
            ),
            args.repeats,
        )
        rows.append(
            (
                "deltalake",
                load,
                measure(lambda: month(last), 3),
                measure(lambda: month(mid), 3),
                measure(lambda: ds.to_table(filter=pc.field("ticker") == pick).to_pandas(), 9),
            )
        )
    except ImportError:
        print("deltalake is not installed (pip install -e '.[bench]'): its row is left out")
    for years in args.years:
        path = root / f"tv{years}"

        def load(path: Path = path, years: int = years) -> None:
            shutil.rmtree(path, ignore_errors=True)
            ParquetDB(path, row_group_years=years).upsert_prices(t)

        loaded = measure(load, args.repeats)
        db = ParquetDB(path, row_group_years=years)
        db.read_table(tickers=data.tickers[0])  # warm the footer cache
        rows.append(
            (
                f"tickvault row_group_years={years}",
                loaded,
                measure(lambda db=db: db.read_table(start=last[0], end=last[1]), 3),
                measure(lambda db=db: db.read_table(start=mid[0], end=mid[1]), 3),
                measure(lambda db=db: db.read_table(tickers=pick), 9),
            )
        )
    shutil.rmtree(root, ignore_errors=True)
    print(
        f"\n{args.tickers} tickers × {args.bars} bars; CPU / wall seconds, medians\n\n"
        "| system | bulk load | one month, all (last) | one month, all (middle) | read 1 ticker |\n"
        "|---|---|---|---|---|"
    )
    for name, *cells in rows:
        print(f"| {name} | " + " | ".join(f"{c:.3f} / {w:.3f}" for c, w in cells) + " |")


if __name__ == "__main__":
    main()
