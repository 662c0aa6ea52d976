#!/usr/bin/env python3
"""Draws the scale benchmark's rows as an SVG of four panels (links per node, idle wake-ups per
second per daemon, RSS per daemon, copy -> all p99) against the number of daemons, one line per
run given, with issue 14's goals as dashed lines. Standard library only.

    cargo bench -p rrt --bench scale          # writes target/scale.csv
    python3 scripts/plot-scale.py docs/scale.svg "full mesh=docs/scale-full-mesh.csv" \
        "swarm above 16=target/scale.csv"

A run is LABEL=CSV (or just CSV, labelled by its file name).
"""

import csv
import os
import sys

PANELS = [
    ("links", "links per node", 10),
    ("wakeups_per_s", "idle wake-ups/s per daemon", 10),
    ("rss_mb", "RSS per daemon (MB)", None),
    ("last_p99", "copy → all p99 (ms)", 10),
]
COLOURS = ["#999999", "steelblue", "darkorange", "purple"]
WIDTH, HEIGHT = 260, 200
MARGIN = 45


def panel(runs, key, title, goal, x0):
    xs_all = [float(row["daemons"]) for _, rows in runs for row in rows]
    ys_all = [float(row[key]) for _, rows in runs for row in rows]
    top = max(ys_all + ([goal] if goal else [])) * 1.15 or 1.0
    right = max(xs_all)

    def px(x):
        return x0 + MARGIN + (x / right) * (WIDTH - MARGIN - 10)

    def py(y):
        return 10 + (1 - y / top) * (HEIGHT - MARGIN - 10)

    out = [
        f'<text x="{x0 + WIDTH / 2}" y="{HEIGHT + 5}" text-anchor="middle" '
        f'font-size="12">{title}</text>',
        f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(right)}" y2="{py(0)}" stroke="black"/>',
        f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(0)}" y2="{py(top)}" stroke="black"/>',
    ]
    for tick in (0, top / 2, top / 1.15):
        out.append(
            f'<text x="{px(0) - 4}" y="{py(tick) + 4}" text-anchor="end" '
            f'font-size="10">{tick:.0f}</text>'
        )
    for x in sorted(set(xs_all)):
        out.append(
            f'<text x="{px(x)}" y="{py(0) + 14}" text-anchor="middle" '
            f'font-size="10">{x:.0f}</text>'
        )
    if goal:
        out.append(
            f'<line x1="{px(0)}" y1="{py(goal)}" x2="{px(right)}" y2="{py(goal)}" '
            'stroke="green" stroke-dasharray="4 3"/>'
        )
    for (label, rows), colour in zip(runs, COLOURS):
        xs = [float(row["daemons"]) for row in rows]
        ys = [float(row[key]) for row in rows]
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in zip(xs, ys):
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
    return out


def read(argument):
    label, _, path = argument.rpartition("=")
    with open(path, newline="") as file:
        return (label or os.path.basename(path), list(csv.DictReader(file)))


def main():
    target, runs = sys.argv[1], [read(argument) for argument in sys.argv[2:]]
    width = WIDTH * len(PANELS)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT + 30}" '
        f'font-family="sans-serif">',
        f'<rect width="{width}" height="{HEIGHT + 30}" fill="white"/>',
    ]
    for index, (key, title, goal) in enumerate(PANELS):
        parts += panel(runs, key, title, goal, index * WIDTH)
    legend = "   ".join(
        f'<tspan fill="{colour}">■ {label}</tspan>' for (label, _), colour in zip(runs, COLOURS)
    )
    parts.append(f'<text x="5" y="{HEIGHT + 22}" font-size="10">{legend}</text>')
    parts.append(
        f'<text x="{width - 5}" y="{HEIGHT + 22}" text-anchor="end" font-size="10" '
        'fill="green">dashed: issue 14 goal at 100 daemons</text>'
    )
    parts.append("</svg>")
    with open(target, "w") as file:
        file.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
