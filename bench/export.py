"""Benchmark: 100k balance-detail rows to Excel (and CSV), and a 10k-line bill PDF.

    .venv/bin/python bench/export.py [--rows 100000] [--bill-lines 10000]

Each case runs in a process of its own, so its peak memory (max RSS, from
resource.getrusage) is its own. CPU seconds are printed next to wall seconds: on a shared
machine the wall time also counts waiting for a core. Rows come from a generator, as from the read model.
Targets: 100k-row Excel < 10 s, peak memory < 500 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXCEL_SECONDS_TARGET = 10.0
PEAK_MB_TARGET = 500.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def run_case(case: str, size: int) -> dict[str, float | int | str]:
    """One case in this process: returns its figures."""
    from exporters.columns import BALANCE_DETAIL_COLUMNS
    from exporters.csv_export import write_csv
    from exporters.excel import write_xlsx
    from exporters.pdf import render_bill_pdf
    from tests.exporters.samples import ISSUER, balance_detail_rows, sample_bill

    baseline = _peak_mb()
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / f"out.{case}"
        cpu_started = time.process_time()
        if case == "xlsx":
            started = time.perf_counter()
            count = write_xlsx(BALANCE_DETAIL_COLUMNS, balance_detail_rows(size), target)
        elif case == "csv":
            started = time.perf_counter()
            with target.open("w", encoding="utf-8", newline="") as out:
                count = write_csv(BALANCE_DETAIL_COLUMNS, balance_detail_rows(size), out)
        else:
            bill = sample_bill(size)  # built before the clock starts: the read model's work
            started, cpu_started = time.perf_counter(), time.process_time()
            target.write_bytes(render_bill_pdf(bill, ISSUER))
            count = size
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        return {"case": case, "rows": count, "seconds": round(seconds, 2), "cpu_seconds": round(cpu_seconds, 2), "bytes": target.stat().st_size,
                "peak_mb": round(_peak_mb(), 1), "baseline_mb": round(baseline, 1)}


def run_in_child(case: str, size: int) -> dict[str, float | int | str]:
    output = subprocess.run([sys.executable, __file__, "--case", case, "--size", str(size)],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bill-lines", type=int, default=10_000)
    parser.add_argument("--case", choices=["xlsx", "csv", "pdf"], help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.size)))
        return
    results = [run_in_child("xlsx", args.rows), run_in_child("csv", args.rows), run_in_child("pdf", args.bill_lines)]
    for r in results:
        unit = "lines" if r["case"] == "pdf" else "rows"
        print(f"{r['case']:>4}: {r['rows']:>7,} {unit} in {r['seconds']:6.2f} s (CPU {r['cpu_seconds']:.2f} s) "
              f"({r['rows'] / max(r['seconds'], 1e-9):>9,.0f} {unit}/s), {r['bytes'] / 1e6:6.1f} MB file, "
              f"peak RSS {r['peak_mb']:.0f} MB (interpreter and imports: {r['baseline_mb']:.0f} MB)")
    excel = results[0]
    verdict = "met" if excel["seconds"] < EXCEL_SECONDS_TARGET and max(r["peak_mb"] for r in results) < PEAK_MB_TARGET \
        else "MISSED"
    print(f"targets (Excel {args.rows:,} rows < {EXCEL_SECONDS_TARGET:.0f} s, peak < {PEAK_MB_TARGET:.0f} MB): {verdict}")


if __name__ == "__main__":
    main()
