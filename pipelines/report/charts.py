"""The report's PNG charts (matplotlib, Agg backend: no display needed). Empty data draws a "no data" panel."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import polars as pl
from matplotlib.axes import Axes

MODEL_ORDER = ("reported", "first_touch", "last_touch", "linear", "position_based", "time_decay", "markov")
STATE_COLORS = {
    "sent": "#2e7d32",
    "pending": "#1976d2",
    "failed": "#c62828",
    "unknown": "#f9a825",
    "expired": "#9e9e9e",
    "skipped": "#cfd8dc",
}
TOP_CAMPAIGNS = 10
DPI = 110


def _no_data(ax: Axes, title: str, what: str = "No data for this range") -> None:
    ax.set_title(title)
    ax.text(0.5, 0.5, what, ha="center", va="center", fontsize=14, color="#777", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#ddd")


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def daily_series(daily: pl.DataFrame, path: Path, *, currency: str) -> Path:
    """Conversions and revenue per day (bars), each ISO week's daily average (step line), Mondays marked."""
    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True)
    panels = [
        ("conversions", "Conversions per day", 1.0),
        ("revenue_cents", f"Revenue per day ({currency})", 100.0),
    ]
    if daily.is_empty():
        for ax, (_, title, _) in zip(axes, panels, strict=True):
            _no_data(ax, title)
        return _save(fig, path)
    frame = daily.sort("period_date").with_columns(
        pl.col("period_date").dt.truncate("1w").alias("week"),
    )
    days = frame["period_date"].to_list()
    for ax, (column, title, scale) in zip(axes, panels, strict=True):
        values = [float(v or 0) / scale for v in frame[column].to_list()]
        ax.bar(days, values, width=0.8, color="#90caf9", label="per day")
        weekly = frame.group_by("week").agg(
            (pl.col(column).cast(pl.Float64).sum() / pl.len() / scale).alias("avg"),
            pl.col("period_date").min().alias("first"),
            pl.col("period_date").max().alias("last"),
        )
        for i, row in enumerate(weekly.sort("week").iter_rows(named=True)):
            ax.hlines(
                row["avg"],
                row["first"] - dt.timedelta(hours=12),
                row["last"] + dt.timedelta(hours=12),
                colors="#d84315",
                linewidth=2,
                label="weekly average per day" if i == 0 else None,
            )
            if row["week"] >= days[0]:  # week boundaries inside the data only
                ax.axvline(row["week"] - dt.timedelta(hours=12), color="#bbb", linewidth=0.6, zorder=0)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    fig.autofmt_xdate()
    return _save(fig, path)


def funnel_dropoff(funnels: pl.DataFrame, path: Path) -> Path:
    """One panel per funnel: persons reaching each step, with the drop-off from the previous step."""
    names = sorted(funnels["funnel_name"].unique().to_list()) if not funnels.is_empty() else []
    cols = 2 if len(names) > 1 else 1
    rows = max(1, (len(names) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 3.6 * rows), squeeze=False)
    flat = list(axes.flat)
    if not names:
        _no_data(flat[0], "Funnel drop-off")
        for ax in flat[1:]:
            ax.axis("off")
        return _save(fig, path)
    for ax, name in zip(flat, names, strict=False):
        steps = funnels.filter(pl.col("funnel_name") == name).sort("step_number")
        reached = [int(v) for v in steps["persons_reached"].to_list()]
        labels = [f"{n}. {s}" for n, s in zip(steps["step_number"], steps["step_name"], strict=True)]
        y = list(range(len(reached)))[::-1]
        ax.barh(y, reached, color="#7e57c2")
        ax.set_yticks(y, labels, fontsize=8)
        top = max(reached) if reached and max(reached) > 0 else 1
        for i, (pos, value) in enumerate(zip(y, reached, strict=True)):
            note = f"{value:,}"
            if i > 0 and reached[i - 1] > 0:
                note += f"  (-{100 * (reached[i - 1] - value) / reached[i - 1]:.1f}%)"
            ax.text(value + top * 0.01, pos, note, va="center", fontsize=8)
        ax.set_xlim(0, top * 1.35)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("persons")
    for ax in flat[len(names) :]:
        ax.axis("off")
    fig.suptitle("Funnel drop-off (all campaigns)")
    fig.tight_layout()
    return _save(fig, path)


def revenue_by_campaign(attribution: pl.DataFrame, path: Path, *, currency: str) -> Path:
    """Credited revenue per campaign, one bar per attribution model side by side (top campaigns + other)."""
    fig, ax = plt.subplots(figsize=(12, 5.5))
    title = f"Revenue by campaign under each attribution model ({currency})"
    if attribution.is_empty() or not attribution["credited_value_cents"].fill_null(0).sum():
        _no_data(ax, title)
        return _save(fig, path)
    totals = (
        attribution.group_by("campaign_label")
        .agg(pl.col("credited_value_cents").sum().alias("total"))
        .sort(["total", "campaign_label"], descending=[True, False])
    )
    top = totals.head(TOP_CAMPAIGNS)["campaign_label"].to_list()
    frame = attribution.with_columns(
        pl.when(pl.col("campaign_label").is_in(top))
        .then(pl.col("campaign_label"))
        .otherwise(pl.lit("other"))
        .alias("campaign")
    )
    campaigns = top + (["other"] if frame["campaign"].eq("other").any() else [])
    present = set(frame["attribution_model"].to_list())
    models = [m for m in MODEL_ORDER if m in present] + sorted(present - set(MODEL_ORDER))
    grouped = frame.group_by(["campaign", "attribution_model"]).agg(pl.col("credited_value_cents").sum())
    value = {(r[0], r[1]): float(r[2] or 0) / 100 for r in grouped.iter_rows()}
    width = 0.8 / len(models)
    cmap = plt.get_cmap("tab10")
    for m, model in enumerate(models):
        xs = [c + (m - (len(models) - 1) / 2) * width for c in range(len(campaigns))]
        ax.bar(xs, [value.get((c, model), 0.0) for c in campaigns], width, label=model, color=cmap(m))
    ax.set_xticks(range(len(campaigns)), [str(c) for c in campaigns], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(currency)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="attribution model", fontsize=8)
    return _save(fig, path)


def meta_delivery(meta: pl.DataFrame, path: Path) -> Path:
    """Conversions per type by Meta delivery state (stacked bars)."""
    fig, ax = plt.subplots(figsize=(10, 4))
    title = "Meta Conversions API delivery status"
    if meta.is_empty():
        _no_data(ax, title, "No conversions with a Meta rule in this range")
        return _save(fig, path)
    types = sorted(meta["conversion_type"].unique().to_list())
    states = [s for s in STATE_COLORS if s in set(meta["delivery_state"].to_list())]
    states += sorted(set(meta["delivery_state"].to_list()) - set(states))
    grouped = meta.group_by(["conversion_type", "delivery_state"]).agg(pl.col("conversions").sum())
    counts = {(r[0], r[1]): int(r[2]) for r in grouped.iter_rows()}
    left = [0] * len(types)
    for state in states:
        widths = [counts.get((t, state), 0) for t in types]
        ax.barh(types, widths, left=left, label=state, color=STATE_COLORS.get(state, "#8d6e63"))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for i, total in enumerate(left):
        ax.text(total, i, f" {total:,}", va="center", fontsize=8)
    ax.set_xlabel("conversions")
    ax.set_title(title)
    ax.legend(ncols=len(states), loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8)
    return _save(fig, path)


def match_quality(match: pl.DataFrame, path: Path) -> Path:
    """Share of the sendable Meta events carrying each identifier, per Meta event (grouped bars)."""
    fig, ax = plt.subplots(figsize=(10, 4))
    title = "Meta match quality: share of sendable events with each identifier"
    if match.is_empty():
        _no_data(ax, title, "No sendable Meta events in this range")
        return _save(fig, path)
    identifiers = [c for c in match.columns if c != "event_name"]
    events = match["event_name"].to_list()
    width = 0.8 / len(events)
    cmap = plt.get_cmap("tab10")
    for e, event in enumerate(events):
        row = match.row(e, named=True)
        ys = [i + (e - (len(events) - 1) / 2) * width for i in range(len(identifiers))]
        ax.barh(ys, [row[i] or 0.0 for i in identifiers], width, label=event, color=cmap(e))
    ax.set_yticks(range(len(identifiers)), identifiers, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of sendable events")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(ncols=len(events), loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8)
    return _save(fig, path)


def draw_all(frames: dict[str, pl.DataFrame], folder: Path, *, currency: str) -> list[Path]:
    """Every chart of the report into ``folder``; returns the PNG paths in page order."""
    return [
        daily_series(frames["daily"], folder / "conversions_revenue_daily.png", currency=currency),
        funnel_dropoff(frames["funnels"], folder / "funnel_dropoff.png"),
        revenue_by_campaign(
            frames["attribution"], folder / "revenue_by_campaign_model.png", currency=currency
        ),
        meta_delivery(frames["meta"], folder / "meta_delivery_status.png"),
        match_quality(frames["match"], folder / "meta_match_quality.png"),
    ]
