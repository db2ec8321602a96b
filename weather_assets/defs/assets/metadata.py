"""Materialization metadata the assets share: how the UI shows a frame's schema, the objects written and a figure
per row as a bar chart."""

from collections.abc import Collection, Iterable, Sequence

import dagster as dg
import pandas as pd

from weather_assets.domain.comfort import label

_LISTED = 24  # object paths listed in metadata; a month-long backfill names the first and last ones


def table_schema(frame: pd.DataFrame) -> dg.MetadataValue:
    """The frame's columns and dtypes, as the UI's schema view."""
    return dg.MetadataValue.table_schema(
        dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in frame.dtypes.items()])
    )


def path_list(uris: list[str]) -> dg.MetadataValue:
    """The objects written, as a Markdown list; a long one shows its first and last entries."""
    shown = uris if len(uris) <= _LISTED else [*uris[: _LISTED // 2], "...", *uris[-_LISTED // 2 :]]
    return dg.MetadataValue.md(
        "\n".join(f"- `{uri}`" if uri != "..." else f"- ... ({len(uris)} in all)" for uri in shown)
    )


def rain_metadata(frame: pd.DataFrame) -> dict[str, float | int]:
    """The rows' precipitation total (mm) and how many station-hours were wet: a wrong rain rule shows at a glance."""
    rain = frame["precipitation"]
    total = round(float(rain.sum()), 1) + 0.0  # NaN skipped; + 0.0 turns -0.0 into 0.0
    return {"precipitation_mm_total": total, "wet_station_hours": int((rain > 0).sum())}


def bar_chart(
    columns: Sequence[str],
    rows: Iterable[tuple[Sequence[str], int]],
    right: Collection[str] = (),
    title: str | None = None,
) -> dg.MetadataValue:
    """A Markdown table whose rows each end in a bar of `length` blocks: a figure per row at a glance in the UI.

    `rows` are (cells, length); the columns named in `right` are right-aligned, as numbers read best.
    """
    lines = [title, ""] if title else []
    lines.append(f"| {' | '.join(columns)} | |")
    lines.append("|" + "".join("--:|" if column in right else "---|" for column in columns) + "---|")
    lines += [f"| {' | '.join(cells)} | `{'█' * length}` |" for cells, length in rows]
    return dg.MetadataValue.md("\n".join(lines))


def comfort_row(cells: Sequence[str], score: float) -> tuple[list[str], int]:
    """A `bar_chart` row that ends in a comfort score and its label, with a block per 5 points."""
    return [*cells, f"{score:.1f}", label(score)], round(score / 5)
