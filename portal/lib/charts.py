"""Server-rendered charts: geometry computed here, drawn as inline SVG by the template."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

WIDTH, HEIGHT = 720, 240
# Room for labels at twice the desktop size: on a phone the chart is drawn at half its width and the
# stylesheet doubles the labels' size (neomesh.css), so that they stay readable (about 12 px).
LEFT, RIGHT, TOP, BOTTOM = 60, 8, 14, 36


@dataclass
class DayVolume:
    day: date
    inbound: int = 0
    outbound: int = 0


@dataclass
class Bar:
    x: str
    y: str
    width: str
    height: str
    css: str
    label: str


@dataclass
class VolumeChart:
    days: list[DayVolume]
    width: int = WIDTH
    height: int = HEIGHT
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[str, int]] = field(default_factory=list)
    x_labels: list[tuple[str, str, str]] = field(default_factory=list)  # x, text, text-anchor
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    baseline: int = HEIGHT - BOTTOM

    @property
    def total_in(self) -> int:
        return sum(d.inbound for d in self.days)

    @property
    def total_out(self) -> int:
        return sum(d.outbound for d in self.days)


def nice_ceiling(value: int) -> tuple[int, int]:
    """An axis maximum at or above `value` and a round step that gives at most five ticks."""
    if value <= 0:
        return 4, 1
    magnitude = 1
    while True:
        for multiple in (1, 2, 5):
            step = multiple * magnitude
            if step * 5 >= value:
                top = -(-value // step) * step
                return top, step
        magnitude *= 10


def short_number(value: int) -> str:
    """An axis label of at most four characters: 950, 1.5k, 20k, 1.5M."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:.1f}".removesuffix(".0") + suffix
    return str(value)


def _fmt(number: float) -> str:
    return f"{number:.1f}"


def volume_chart(counts: dict[tuple[date, str], int], *, end: date, days: int = 30) -> VolumeChart:
    """Bars for inbound and outbound messages per day, for `days` days ending on `end`.

    `counts` maps (day, "in" or "out") to a number of messages; missing days are zero.
    """
    series = [DayVolume(end - timedelta(days=days - 1 - i)) for i in range(days)]
    for volume in series:
        volume.inbound = counts.get((volume.day, "in"), 0)
        volume.outbound = counts.get((volume.day, "out"), 0)
    chart = VolumeChart(days=series)
    top, step = nice_ceiling(max([max(d.inbound, d.outbound) for d in series] + [0]))
    plot_height = chart.baseline - TOP
    slot = (chart.plot_right - chart.plot_left) / days
    bar_width = slot * 0.4
    for index, volume in enumerate(series):
        x = chart.plot_left + index * slot + slot * 0.1
        for offset, value, css, word in (
            (0, volume.inbound, "in", "in"),
            (1, volume.outbound, "out", "out"),
        ):
            height = plot_height * value / top
            chart.bars.append(
                Bar(
                    x=_fmt(x + offset * bar_width),
                    y=_fmt(chart.baseline - height),
                    width=_fmt(bar_width),
                    height=_fmt(height),
                    css=css,
                    label=f"{volume.day:%d %b}: {value} {word}",
                )
            )
        if index == days - 1:  # the last day ends at the plot's edge, never past it
            chart.x_labels.append((_fmt(chart.plot_right), f"{volume.day:%d %b}", "end"))
        elif index % 5 == 0 and index < days - 5:  # room before the last label
            chart.x_labels.append((_fmt(x + bar_width), f"{volume.day:%d %b}", "middle"))
    chart.ticks = [
        (short_number(value), round(chart.baseline - plot_height * value / top))
        for value in range(0, top + 1, step)
    ]
    return chart
