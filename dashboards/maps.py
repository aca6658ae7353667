"""The network map as a pydeck Deck: planned routes, travelled trails, sites with their geofences,
shipments coloured by status. Pure: frames in, a Deck out.

Colours mean only status: a shipment's dot (and its trail) has its status colour; sites are
neutral rings, geofences and routes neutral grey, trackers with no plan dark grey. The view is
fitted to what is shown (the shipments with their origins and destinations), so no shipment on the
road is off-screen. Tooltips are plain text. The basemap is left to Streamlit (`map_style=None`):
Carto's light or dark style, following the theme, with no token. What the browser receives is kept
small: one row per dot (shipment, site, tracker) and per straight leg of a line, with only what the
layers draw, coordinates rounded to ~1 m, trails only for the shipments asked.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import pydeck as pdk

from dashboards.shipments import STATUS_COLOURS, UNPLANNED_COLOUR
from tower.geo import Route, offset
from tower.masterdata.model import Site

POINTS, LINES = "points", "lines"  # the two layers' ids; a point's "kind" says what it is (selections)
SHIPMENT, SITE, TRACKER = "shipment", "site", "tracker"
SITE_COLOUR = (70, 80, 100)  # neutral: a site's ring says where, never how it is doing
NEUTRAL = (128, 128, 128)  # planned routes and geofences
FIT_WIDTH_PX, FIT_PADDING = 700, 0.8  # fit for a map at least this wide, the data within this share of it
MAX_FIT_ZOOM = 12.0
RING_SIDES = 32  # a circular geofence is drawn as this many straight sides


def legend(counts: dict[str, int] | None = None, lanes: bool = True) -> str:
    """The status colours as a line of HTML (with counts, if given) and the neutral shapes, for a
    caption; `lanes`: the map draws planned routes and trails (deck's `lanes`)."""
    statuses = " ".join(f"<span style='color:rgb{colour}'>●</span> {status}"
                        + (f" ({counts.get(status, 0)})" if counts is not None else "")
                        for status, colour in STATUS_COLOURS.items())  # fmt: skip
    return (f"{statuses} · <span style='color:rgb{SITE_COLOUR}'>◯</span> site · "
            f"<span style='color:rgb{UNPLANNED_COLOUR}'>●</span> tracker with no plan"
            + (" · grey lines: planned routes and geofences; trails in their shipment's colour" if lanes else
               " · routes and geofences: on the Map page"))  # fmt: skip


def fit(points: list[tuple[float, float]], height_px: int, width_px: int = FIT_WIDTH_PX) -> pdk.ViewState:
    """The view that shows every (lon, lat) point on a map of this size (Web Mercator)."""
    if not points:
        return pdk.ViewState(longitude=0.0, latitude=20.0, zoom=1.0)

    def y(lat: float) -> float:  # Mercator, in units of 2π on the world's width
        return math.log(math.tan(math.pi / 4 + math.radians(max(-85.0, min(85.0, lat))) / 2))

    lons, lats = [p[0] for p in points], [p[1] for p in points]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)
    centre_y = (y(south) + y(north)) / 2
    centre_lat = math.degrees(2 * math.atan(math.exp(centre_y)) - math.pi / 2)
    world_px = min(
        FIT_PADDING * width_px / ((east - west) / 360) if east > west else math.inf,
        FIT_PADDING * height_px / ((y(north) - y(south)) / (2 * math.pi)) if north > south else math.inf,
    )
    zoom = min(MAX_FIT_ZOOM, math.log2(world_px / 512)) if world_px != math.inf else MAX_FIT_ZOOM  # deck: 512 px
    return pdk.ViewState(longitude=(west + east) / 2, latitude=centre_lat, zoom=round(zoom, 2))  # fmt: skip


def legs(points: list[list[float]], colour: list[int], width_px: float, **more: object) -> list[dict]:
    """A line through [lon, lat] points as its straight legs, rows of the lines layer (`more`: fields
    every leg carries, e.g. its shipment)."""
    return [{"from": a, "to": b, "colour": colour, "width": width_px, **more}
            for a, b in zip(points, points[1:], strict=False)]  # fmt: skip


def outline(site: Site) -> list[list[float]]:
    """A site's geofence as a closed line of [lon, lat] points (a circle as RING_SIDES sides)."""
    if site.geofence.polygon:
        ring = [[lon, lat] for lat, lon in site.geofence.polygon]
    else:
        radius = site.geofence.radius_m or 0
        ring = []
        for side in range(RING_SIDES):
            angle = 2 * math.pi * side / RING_SIDES
            lat, lon = offset((site.lat, site.lon), radius * math.cos(angle), radius * math.sin(angle))
            ring.append([round(lon, 6), round(lat, 6)])
    return [*ring, ring[0]]


def lines_layer(rows: list[dict]) -> pdk.Layer:
    """Every line of a map in one layer (routes, trails, geofences): rows from `legs`."""
    return pdk.Layer("LineLayer", id=LINES, data=rows, get_source_position="from", get_target_position="to",
                     get_color="colour", get_width="width")  # fmt: skip


def points_layer(rows: list[dict], pickable: bool = True) -> pdk.Layer:
    """Every dot of a map in one layer: rows with position, fill, line (RGBA), radius and width (px)."""
    return pdk.Layer("ScatterplotLayer", id=POINTS, data=rows, get_position="position", get_fill_color="fill",
                     get_line_color="line", get_radius="radius", get_line_width="width", stroked=True,
                     radius_units="'pixels'", line_width_units="'pixels'", pickable=pickable)  # fmt: skip
    # quoted: pydeck takes a bare string for an accessor expression ("@@=pixels" drew a block over the map)


def route_points(route: Route) -> list[list[float]]:
    return [[lon, lat] for lat, lon in route.points]


def _rgb(colour: tuple[int, int, int], alpha: int) -> list[int]:
    return [*colour, alpha]


def deck(shipments: pd.DataFrame, routes: dict[str, Route], sites: tuple[Site, ...], site_health: pd.DataFrame,
         trails: dict[str, list[list[float]]], unplanned: pd.DataFrame, when: Callable[[float | None], str],
         height_px: int, lanes: bool = True) -> pdk.Deck:  # fmt: skip
    """`site_health`: site, machines, health (worst), said in the site's tooltip; `trails`: shipment id
    -> [[lon, lat], ...]; `unplanned`: trackers with no shipment planned (device_id, lat, lon), drawn
    at their newest position; `when`: formats a time for the tooltips; `lanes`: draw the planned
    routes and the sites' geofences (the Overview's map leaves them to the Map page: at the whole
    network's zoom a geofence is smaller than a pixel).

    Two layers, whatever is shown: every line in one, every dot in the other (each row says what it
    draws). A browser without a GPU (WebGL in software, SwiftShader) pays ~0.2-0.3 s per layer it
    draws on every page visit, whatever the layer's kind or size (benchmarks/README.md)."""
    status_of = dict(zip(shipments["shipment"], shipments["status"], strict=True))
    health = site_health.set_index("site") if not site_health.empty else pd.DataFrame(columns=["machines", "health"])
    points = []
    for site in sites:
        machines = int(health["machines"].get(site.id, 0))
        worst = health["health"].get(site.id) if machines else None
        equipment = f"\n{machines} machines, worst health {worst:.0f}" if machines and pd.notna(worst) else ""
        points.append({"kind": SITE, "id": site.id, "position": [site.lon, site.lat], "fill": [255, 255, 255, 200],
                       "line": _rgb(SITE_COLOUR, 255), "radius": 8, "width": 3,
                       "tip": f"{site.name} ({site.type}){equipment}"})  # fmt: skip
    for device, lat, lon in zip(unplanned["device_id"], unplanned["lat"], unplanned["lon"], strict=True):
        points.append({"kind": TRACKER, "id": device, "position": [round(lon, 5), round(lat, 5)],
                       "fill": _rgb(UNPLANNED_COLOUR, 200), "line": [0, 0, 0, 0], "radius": 5, "width": 0,
                       "tip": f"{device}: no shipment planned"})  # fmt: skip
    white = [255, 255, 255, 230]
    for row in shipments.itertuples(index=False):
        points.append({
            "kind": SHIPMENT, "id": row.shipment, "position": [round(row.lon, 5), round(row.lat, 5)],
            "fill": _rgb(STATUS_COLOURS[row.status], 230), "line": white, "radius": 6, "width": 1,
            "tip": f"{row.shipment} · {row.status}\n{row.lane} · {row.cargo} · {row.customer}\n"
                   f"promised {when(row.promised_ms)}\n"
                   + (f"arrived {when(row.arrival_ms)}" if pd.notna(row.arrival_ms) else f"ETA {when(row.eta_ms)}")
                   + (f"\n{row.open_alerts} open alert(s), worst {row.worst}" if row.open_alerts else ""),
        })  # fmt: skip
    lines = []
    if lanes:
        grey = [*NEUTRAL, 120]
        for route in routes.values():
            lines += legs(route_points(route), grey, 2)
        for site in sites:
            lines += legs(outline(site), [*NEUTRAL, 160], 1)
    for shipment_id, path in trails.items():
        if shipment_id in status_of:
            lines += legs(path, _rgb(STATUS_COLOURS[status_of[shipment_id]], 170), 3, shipment=shipment_id)
    in_view = [tuple(p["position"]) for p in points if p["kind"] != SITE]
    where = {site.id: (site.lon, site.lat) for site in sites}
    in_view += [where[s] for s in (*shipments["origin"], *shipments["destination"]) if s in where]
    return pdk.Deck(layers=[lines_layer(lines), points_layer(points)],
                    initial_view_state=fit(in_view or list(where.values()), height_px),
                    tooltip={"text": "{tip}"}, map_style=None)  # fmt: skip
