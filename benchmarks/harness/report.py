"""Ratios, targets, the Markdown report and the S1/C1 plots, from the results dictionary."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import median
from typing import Any

SQLITE_FLOOR = {"normal": "sqlite3 floor (NORMAL)", "full": "sqlite3 floor (FULL)"}
PG_FLOOR = "asyncpg floor"
READ_FLOOR = {"sqlite": "sqlite3 floor", "postgres": PG_FLOOR}


def write_floor(row: dict[str, Any]) -> str:
    if row["backend"] == "postgres":
        return PG_FLOOR
    return SQLITE_FLOOR["normal" if row["durability"] == "normal" else "full"]


def add_ratios(results: dict[str, Any]) -> None:
    """Each row's ratio to the floor of the same backend and durability, in the same run:
    throughput / floor's for writes (higher is better), latency / floor's for reads."""
    for name in ("W1", "W2"):
        _write_ratios(results.get(name, {}))
    for table in results.get("C1", {}).values():
        _write_ratios(table)
    for name in ("W3", "W4", "M1", "M2"):
        _read_ratios(results.get(name, {}))
    for table in results.get("S1", {}).values():
        _read_ratios(table)


def _ratio(row: dict[str, Any], floor: dict[str, Any]) -> float:
    """The median over repetitions of row / floor within each repetition (both ran in it, a
    few seconds apart), which a machine whose load drifts between repetitions disturbs less
    than the ratio of the two medians; that ratio when repetitions are missing."""
    ours, base = row.get("reps") or [], floor.get("reps") or []
    if ours and len(ours) == len(base) and all(base):
        return float(median([a / b for a, b in zip(ours, base, strict=True)]))
    return float(row["value"] / floor["value"])


def _write_ratios(rows: dict[str, Any]) -> None:
    for row in rows.values():
        floor = rows.get(write_floor(row))
        if floor and row.get("value") and floor.get("value"):
            row["ratio"] = _ratio(row, floor)
            row["floor"] = write_floor(row)
        normal = rows.get(SQLITE_FLOOR["normal"])
        if normal and row.get("value") and normal.get("value") and row["backend"] == "sqlite":
            row["ratio_normal_floor"] = _ratio(row, normal)


def _read_ratios(rows: dict[str, Any]) -> None:
    for row in rows.values():
        floor = rows.get(READ_FLOOR[row["backend"]])
        if floor and row.get("value") and floor.get("value"):
            row["ratio"] = _ratio(row, floor)


def pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _get(results: dict[str, Any], *path: Any) -> Any:
    for key in path:
        if not isinstance(results, dict) or key not in results:
            return None
        results = results[key]
    return results


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, what was measured, met) for each target of issue 11 this run measured."""
    out: list[tuple[str, str, bool | None]] = []

    def ratio(name: str, label: str) -> float | None:
        return _get(results, name, label, "ratio")  # type: ignore[no-any-return]

    def add(text: str, value: float | None, ok: bool | None, fmt: str = "{:.2f}×") -> None:
        out.append((text, "not measured" if value is None else fmt.format(value), ok))

    r = ratio("W1", "boternity SQLite normal")
    add("W1 SQLite normal ≥ 0.35× floor", r, None if r is None else r >= 0.35)
    r = ratio("W2", "boternity SQLite normal")
    add("W2 SQLite normal ≥ 0.6× floor", r, None if r is None else r >= 0.6)
    r = ratio("W2", "boternity SQLite full")
    add("W2 SQLite full ≥ 2.5× FULL floor", r, None if r is None else r >= 2.5)
    w3 = _get(results, "W3")
    r = ratio("W3", "boternity SQLite")
    add("W3 SQLite ≤ 4× floor", r, None if r is None else r <= 4)
    if w3 and "boternity SQLite" in w3:
        ours = w3["boternity SQLite"]["value"]
        peers = {k: v["value"] for k, v in w3.items() if v["group"] == "peer" and v.get("value")}
        slower = [k for k, v in peers.items() if v <= ours]
        out.append(
            ("W3 SQLite faster than every peer",
             "yes" if not slower else "not faster than " + ", ".join(slower), not slower)
        )  # fmt: skip
    s1 = _get(results, "S1")
    if s1:
        values = [t["boternity SQLite"]["value"] for t in s1.values() if "boternity SQLite" in t]
        if values:
            growth = max(values) / min(values)
            sizes = ", ".join(f"{int(k):,}" for k in s1)
            add(f"S1 flat over {sizes}: max/min ≤ 1.5", growth, growth <= 1.5)
    r = ratio("W4", "boternity SQLite")
    add("W4 warm ≤ 3× floor", r, None if r is None else r <= 3)
    r = ratio("M1", "boternity SQLite")
    add("M1 get_memories(limit=50), 100k memories ≤ 3× raw", r, None if r is None else r <= 3)
    m2 = _get(results, "M2", "boternity SQLite", "value")
    add("M2 search_memories, 100k memories, median ≤ 5 ms", m2 and m2 / 1000,
        None if m2 is None else m2 <= 5000, "{:.2f} ms")  # fmt: skip
    r = ratio("W1", "boternity PostgreSQL")
    add("PostgreSQL W1 ≥ 0.5× asyncpg", r, None if r is None else r >= 0.5)
    r = ratio("W2", "boternity PostgreSQL")
    add("PostgreSQL W2 ≥ 0.7× asyncpg", r, None if r is None else r >= 0.7)
    h = _get(results, "CLI", "bnity --help", "value")
    add("bnity --help < 0.3 s", h, None if h is None else h < 300, "{:.0f} ms")
    s = _get(results, "CLI", "bnity sessions BOT", "value")
    add("bnity sessions BOT < 0.5 s", s, None if s is None else s < 500, "{:.0f} ms")
    m3 = _get(results, "M3", "hybrid", "median_ms")
    size = _get(results, "M3", "memories") or 100_000
    add(f"M3 hybrid search, {size:,} memories, median ≤ 25 ms (at 100k)", m3,
        None if m3 is None or size < 100_000 else m3 <= 25, "{:.2f} ms")  # fmt: skip
    recall = _get(results, "M3", "recall", "median_ms")
    add(f"memory recall, {size:,} memories, median ≤ 30 ms (at 100k)", recall,
        None if recall is None or size < 100_000 else recall <= 30, "{:.2f} ms")  # fmt: skip
    return out


def rd_query() -> str:
    from harness.readers import SEARCH_QUERY

    return SEARCH_QUERY


# --- Markdown ------------------------------------------------------------------------------


def _num(v: float | None, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:,.{digits}f}"


def _pragmas(p: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in p.items()) or "–"


def _cell_write(row: dict[str, Any] | None) -> list[str]:
    if row and row.get("failed"):
        return [f"failed ({row['failed']})", "", ""]
    if not row or row.get("value") is None:
        return ["–", "–", "–"]
    cpu = _num(row.get("cpu_us"))
    if row.get("server_cpu_us") is not None:
        cpu += f" + {_num(row['server_cpu_us'])} server"
    return [_num(row["value"]), _num(row.get("ratio"), 2) + "×", cpu]


def _cell_read(row: dict[str, Any] | None) -> list[str]:
    if not row or row.get("value") is None:
        return ["–", "–", "–"] if not row else [row.get("skipped", "–"), "", ""]
    value = f"{_num(row['value'])} ({_num(row.get('p95'))})"
    return [value, _num(row.get("ratio"), 2) + "×", _num(row.get("cpu_us"))]


def _c1_cell(row: dict[str, Any] | None) -> str:
    if not row:
        return "–"
    if row.get("failed"):
        return "failed"
    return f"{_num(row['value'])} ({_num(row.get('ratio'), 2)}×)"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    parts = [
        f"Run {meta['started']} on {meta['machine']} ({meta['mode']}, {meta['reps']} repetitions,"
        f" systems interleaved); commit {meta['commit']}; load average {meta['load_before']}"
        f" before, {meta['load_after']} after. Ratios are to the floor of the same backend and"
        " durability, taken within each repetition (median over repetitions); CPU is this"
        " process's CPU time (all threads) per operation, the steadier figure on a shared"
        " machine.\n",
        "**Targets (issue 11)**\n",
        _table(
            ["target", "measured", "met"],
            [
                [t, m, {True: "yes", False: "**no**", None: "–"}[ok]]
                for t, m, ok in targets(results)
            ],
        ),  # fmt: skip
    ]
    writes = [results.get("W1", {}), results.get("W2", {})]
    labels = list(dict.fromkeys(k for t in writes for k in t))
    if labels:
        parts.append(
            "**Writes** — W1: one session, one message at a time; W2: 8 sessions at once."
            " msg/s (× floor of the same durability), CPU µs per message (PostgreSQL: this"
            " process + the server backends of that system).\n"
        )
        rows = []
        for label in labels:
            row = next(t[label] for t in writes if label in t)
            rows.append([label, *_cell_write(writes[0].get(label)), *_cell_write(writes[1].get(label)),
                         _pragmas(row["pragmas"])])  # fmt: skip
        parts.append(_table(["system", "W1 msg/s", "ratio", "CPU µs", "W2 msg/s", "ratio", "CPU µs",
                             "durability as run"], rows))  # fmt: skip
    reads = [results.get("W3", {}), results.get("W4", {})]
    labels = list(dict.fromkeys(k for t in reads for k in t))
    if labels:
        parts.append(
            f"**Reads** — W3: the last 50 of a {meta['w3']:,}-message session; W4: the last 50 of"
            f" 200 random sessions out of {meta['w4_sessions']:,} (60 messages each), warm."
            " Median µs (p95), × floor, CPU µs per read.\n"
        )
        rows = [[label, *_cell_read(reads[0].get(label)), *_cell_read(reads[1].get(label))]
                for label in labels]  # fmt: skip
        parts.append(
            _table(["system", "W3 µs", "ratio", "CPU µs", "W4 µs", "ratio", "CPU µs"], rows)
        )
    if "S1" in results:
        sizes = list(results["S1"])
        labels = list(dict.fromkeys(k for t in results["S1"].values() for k in t))
        parts.append("**S1** — W3 by session length: median µs (× floor).\n")
        rows = []
        for label in labels:
            cells = []
            for size in sizes:
                row = results["S1"][size].get(label)
                if not row or row.get("value") is None:
                    cells.append("skipped" if row else "–")
                else:
                    cells.append(f"{_num(row['value'])} ({_num(row.get('ratio'), 1)}×)")
            rows.append([label, *cells])
        parts.append(_table(["system", *(f"{int(s):,}" for s in sizes)], rows))
    if "C1" in results:
        ks = list(results["C1"])
        labels = list(dict.fromkeys(k for t in results["C1"].values() for k in t))
        parts.append("**C1** — W2 with 1 to 16 sessions at once: msg/s (× floor).\n")
        rows = [[label, *(_c1_cell(results["C1"][k].get(label)) for k in ks)] for label in labels]
        parts.append(_table(["system", *ks], rows))
    if "M1" in results:
        parts.append(
            f"**Memories** — {meta['memories']:,} memories of one bot. M1: get_memories(limit=50);"
            f" M2: search_memories({rd_query()!r}: its words are in"
            f" {results.get('M2_matches', 0):,} of them, each scored by the raw query)."
            " Median µs (p95), × the raw query, CPU µs.\n"
        )
        labels = list(dict.fromkeys([*results["M1"], *results["M2"]]))
        rows = [[label, *_cell_read(results["M1"].get(label)), *_cell_read(results["M2"].get(label))]
                for label in labels]  # fmt: skip
        parts.append(
            _table(["system", "M1 µs", "ratio", "CPU µs", "M2 µs", "ratio", "CPU µs"], rows)
        )
    if "M3" in results:
        m3 = results["M3"]
        if "failed" in m3:
            parts.append(f"**M3** — benchmarks/memory_search_bench.py failed: {m3['failed']}\n")
        else:
            parts.append(
                f"**M3** — issue 12's hybrid memory search over {m3.get('memories', 0):,}"
                " memories (benchmarks/memory_search_bench.py, the local embedder, the query's"
                " embedding included), and one chat turn's memory recall (`MemoryRecall`, hybrid):"
                " median (p95) ms.\n"
            )
            rows = [[mode, f"{_num(m3[mode]['median_ms'], 2)} ({_num(m3[mode]['p95_ms'], 2)})"]
                    for mode in ("hybrid", "semantic", "text", "recall") if mode in m3]  # fmt: skip
            parts.append(_table(["mode", "ms"], rows))
    if "O1" in results:
        parts.append(
            "**Ownership check** — what the chat engine asks before each write to a session.\n"
        )
        rows = [[k, _num(v["value"], 1), _num(v["p95"], 1), _num(v["cpu_us"], 1)]
                for k, v in results["O1"].items()]  # fmt: skip
        parts.append(_table(["check", "median µs", "p95 µs", "CPU µs"], rows))
    if "loop" in results:
        rows = [[k, _num(v["count"]), *(f"{_num(v[w], 1)} ({_num(v['cpu_' + w], 1)})"
                 for w in ("p50_us", "p99_us", "max_us"))] for k, v in results["loop"].items()]  # fmt: skip
        parts.append(
            "**Event-loop blocking** — how long boternity SQLite (durability normal) held the"
            " event-loop thread each time it ran a batch of units or a bounded read there"
            " (every boternity SQLite system of the workload together): wall µs (the loop"
            " thread's CPU µs: the rest is time other processes had the core).\n"
        )
        parts.append(_table(["workload", "runs on the loop", "p50 µs", "p99 µs", "max µs"], rows))
    if "CLI" in results:
        parts.append("**CLI start-up** — real subprocesses, median (p90) ms.\n")
        rows = [[k, f"{_num(v['value'])} ({_num(v['p90'])})"] for k, v in results["CLI"].items()]
        parts.append(_table(["command", "ms"], rows))
    return "\n".join(parts)


START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def into_readme(readme: str, block: str) -> str:
    """``readme`` with what stands between the bench markers replaced by ``block``."""
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block.strip()}\n{END}{tail}"


# --- plots ---------------------------------------------------------------------------------


def _style(tables: dict[str, Any], label: str, n: int) -> dict[str, Any]:
    """One colour per system (tab20 has enough), floors dashed, boternity drawn thick."""
    import matplotlib

    group = next((t[label]["group"] for t in tables.values() if label in t), "")
    return {
        "label": label,
        "marker": "o",
        "color": matplotlib.colormaps["tab20"](n % 20),
        "linestyle": "--" if group == "floor" else "-",
        "linewidth": 2.5 if group == "boternity" else 1.2,
    }


def plots(results: dict[str, Any], out: Path) -> list[Path]:
    """s1.png and c1.png (none without matplotlib: it comes with the bench group)."""
    try:
        import matplotlib
    except ImportError:
        print("no plots: matplotlib is not installed (uv run --group bench ...)")
        return []

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s1 = results.get("S1")
    c1 = results.get("C1")
    made = []
    if s1:
        made.append(_log_plot(
            plt, s1, out / "s1.png", base=10, xlabel="messages in the session",
            ylabel="median µs for the last 50 (log)",
            title="S1: reading the latest 50 messages, by session length",
            tick=lambda x: f"{x:,}",
        ))  # fmt: skip
    if c1:
        made.append(_log_plot(
            plt, c1, out / "c1.png", base=2, xlabel="sessions appending at once",
            ylabel="messages/s, all sessions (log)",
            title="C1: appends by number of concurrent sessions", tick=str,
        ))  # fmt: skip
    return made


def _log_plot(
    plt: Any, part: dict[str, Any], path: Path, *, base: int, xlabel: str, ylabel: str,
    title: str, tick: Any,
) -> Path:  # fmt: skip
    """One line per system of ``part`` ({x: {system: {"value"}}}), both axes logarithmic."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    xs = [int(x) for x in part]
    labels = list(dict.fromkeys(k for t in part.values() for k in t))
    for n, label in enumerate(labels):
        pts = [(int(x), t[label]["value"]) for x, t in part.items()
               if label in t and t[label].get("value")]  # fmt: skip
        if pts:
            ax.plot(*zip(*pts, strict=True), **_style(part, label, n))
    ax.set_xscale("log", base=base)
    ax.set_yscale("log")
    ax.set_xticks(xs, [tick(x) for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
