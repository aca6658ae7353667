"""The network map as a pydeck Deck: shipments coloured by status, sites, and for a few shipments
their planned routes, travelled trails and their sites' geofences. Pure: frames in, a Deck out.

One layer of dots draws it all (a route, a trail, a geofence as a dotted line): a browser without a
GPU (WebGL in software, SwiftShader) pays ~0.2-0.3 s for each deck.gl layer it draws, on every page
visit, whatever the layer's kind or size (benchmarks/README.md); a second layer for lines would
double what the map costs there. Each dot's row says what it is (`kind`), for tooltips and selections.

Colours mean only status: a shipment's dot (and its trail) has its status colour; sites are
neutral rings, geofences and routes neutral grey dots, trackers with no plan dark grey. The view is
fitted to what is shown (the shipments with their origins and destinations), so no shipment on the
road is off-screen. Tooltips are plain text. The basemap is left to Streamlit (`map_style=None`):
Carto's light or dark style, following the theme, with no token. What the browser receives is kept
small: one row per dot (shipment, site, tracker) and per straight leg of a line, with only what the
layers draw, coordinates rounded to ~1 m, trails only for the shipments asked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pandas as pd
import pydeck as pdk
from pydeck.bindings.json_tools import default_serialize

from dashboards.shipments import STATUS_COLOURS, UNPLANNED_COLOUR
from tower.geo import Route, offset
from tower.masterdata.model import Site

POINTS = "points"  # the map's one layer
SHIPMENT, SITE, TRACKER, ROUTE, TRAIL, FENCE = "shipment", "site", "tracker", "route", "trail", "geofence"  # kinds
SITE_COLOUR = (70, 80, 100)  # neutral: a site's ring says where, never how it is doing
NEUTRAL = (128, 128, 128)  # planned routes and geofences
NO_LINE = [0, 0, 0, 0]
FIT_WIDTH_PX, FIT_PADDING = 700, 0.8  # fit for a map at least this wide, the data within this share of it
MAX_FIT_ZOOM = 12.0
ROUTE_DOTS, TRAIL_DOTS, FENCE_DOTS = 80, 80, 24  # at most this many dots draw one route, trail, geofence


class Deck(pdk.Deck):
    """pydeck's Deck, its JSON sent without pydeck's indentation (two spaces and a line per number:
    twice the bytes for the browser to parse, with JSON5, on every refresh)."""

    def to_json(self) -> str:
        return json.dumps(self, default=default_serialize, separators=(",", ":"))


def legend(counts: dict[str, int] | None = None, detail: bool = True) -> str:
    """The status colours as a line of HTML (with counts, if given) and the neutral shapes, for a
    caption; `detail`: the map draws routes, trails and geofences (deck's `detail`)."""
    statuses = " ".join(f"<span style='color:rgb{colour}'>●</span> {status}"
                        + (f" ({counts.get(status, 0)})" if counts is not None else "")
                        for status, colour in STATUS_COLOURS.items())  # fmt: skip
    return (f"{statuses} · <span style='color:rgb{SITE_COLOUR}'>◯</span> site · "
            f"<span style='color:rgb{UNPLANNED_COLOUR}'>●</span> tracker with no plan"
            + (" · grey dots: planned routes and geofences; trails in their shipment's colour" if detail else
               " · routes, trails and geofences: on the Map page, for a few shipments"))  # fmt: skip


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


def dot(kind: str, id_: str, position: list[float], fill: list[int], radius_px: float, tip: str,
        line: list[int] = NO_LINE, line_px: float = 0) -> dict:  # fmt: skip
    """One row of the map's layer."""
    return {"kind": kind, "id": id_, "position": position, "fill": fill, "line": line, "radius": radius_px,
            "width": line_px, "tip": tip}  # fmt: skip


def route_dots(route: Route, count: int = ROUTE_DOTS) -> list[list[float]]:
    """[lon, lat] points evenly spaced along a route, its ends included: a dotted line."""
    spots = [route.position(route.length_m * n / (count - 1))[0] for n in range(count)]
    return [[round(lon, 5), round(lat, 5)] for lat, lon in spots]


def sampled(path: list[list[float]], count: int = TRAIL_DOTS) -> list[list[float]]:
    """At most `count` of a path's points, evenly picked, its newest kept."""
    step = max(1, math.ceil(len(path) / count))
    return path[::-1][::step][::-1]


def fence_dots(site: Site) -> list[list[float]]:
    """A site's geofence as a dotted outline: [lon, lat] points around its circle or along its polygon."""
    if site.geofence.polygon:
        ring = [*site.geofence.polygon, site.geofence.polygon[0]]
        return route_dots(Route(tuple(ring)), FENCE_DOTS)
    radius = site.geofence.radius_m or 0
    spots = [offset((site.lat, site.lon), radius * math.cos(angle), radius * math.sin(angle))
             for angle in (2 * math.pi * n / FENCE_DOTS for n in range(FENCE_DOTS))]  # fmt: skip
    return [[round(lon, 6), round(lat, 6)] for lat, lon in spots]


def layer(rows: list[dict], pickable: bool = True) -> pdk.Layer:
    """The map's one layer: rows from `dot`."""
    return pdk.Layer("ScatterplotLayer", id=POINTS, data=rows, get_position="position", get_fill_color="fill",
                     get_line_color="line", get_radius="radius", get_line_width="width", stroked=True,
                     radius_units="'pixels'", line_width_units="'pixels'", pickable=pickable)  # fmt: skip
    # quoted: pydeck takes a bare string for an accessor expression ("@@=pixels" drew a block over the map)


def _rgb(colour: tuple[int, int, int], alpha: int) -> list[int]:
    return [*colour, alpha]


def deck(shipments: pd.DataFrame, routes: dict[str, Route], sites: tuple[Site, ...], site_health: pd.DataFrame,
         trails: dict[str, list[list[float]]], unplanned: pd.DataFrame, when: Callable[[float | None], str],
         height_px: int, detail: bool = True) -> Deck:  # fmt: skip
    """`routes`: lane -> planned route; `site_health`: site, machines, health (worst), said in the
    site's tooltip; `trails`: shipment id -> [[lon, lat], ...]; `unplanned`: trackers with no
    shipment planned (device_id, lat, lon), drawn at their newest position; `when`: formats a time
    for the tooltips; `detail`: draw the shown shipments' planned routes and their sites' geofences
    (for a few shipments: at the whole network's zoom a geofence is smaller than a pixel, and
    thousands of routes would hide the shipments). Drawn in this order, the later on top: sites,
    shipments, trackers with no plan, then the small dots of routes, geofences and trails (after what
    can be selected, so that their growing never moves a selection); a trail's dot tells, and
    selects, its shipment."""
    dots = []  # what can be selected first: the chart keeps a selection by index, which lines would move
    health = site_health.set_index("site") if not site_health.empty else pd.DataFrame(columns=["machines", "health"])
    for site in sites:
        machines = int(health["machines"].get(site.id, 0))
        worst = health["health"].get(site.id) if machines else None
        equipment = f"\n{machines} machines, worst health {worst:.0f}" if machines and pd.notna(worst) else ""
        dots.append(dot(SITE, site.id, [site.lon, site.lat], [255, 255, 255, 200], 8,
                        f"{site.name} ({site.type}){equipment}", _rgb(SITE_COLOUR, 255), 3))  # fmt: skip
    white, tips = [255, 255, 255, 230], {}
    for row in shipments.itertuples(index=False):
        tips[row.shipment] = tip = (f"{row.shipment} · {row.status}\n{row.lane} · {row.cargo} · {row.customer}\n"
               f"promised {when(row.promised_ms)}\n"
               + (f"arrived {when(row.arrival_ms)}" if pd.notna(row.arrival_ms) else f"ETA {when(row.eta_ms)}")
               + (f"\n{row.open_alerts} open alert(s), worst {row.worst}" if row.open_alerts else ""))  # fmt: skip
        dots.append(dot(SHIPMENT, row.shipment, [round(row.lon, 5), round(row.lat, 5)],
                        _rgb(STATUS_COLOURS[row.status], 230), 6, tip, white, 1))  # fmt: skip
    for device, lat, lon in zip(unplanned["device_id"], unplanned["lat"], unplanned["lon"], strict=True):
        dots.append(dot(TRACKER, device, [round(lon, 5), round(lat, 5)], _rgb(UNPLANNED_COLOUR, 200), 5,
                        f"{device}: no shipment planned"))  # fmt: skip
    if detail:
        grey = _rgb(NEUTRAL, 150)
        for lane in [lane for lane in dict.fromkeys(shipments["lane"]) if lane in routes]:
            dots += [dot(ROUTE, lane, spot, grey, 1.5, f"planned route {lane}") for spot in route_dots(routes[lane])]
        ends = set(shipments["origin"]) | set(shipments["destination"])
        for site in sites:
            if site.id in ends:
                dots += [dot(FENCE, site.id, spot, grey, 1.5, f"geofence of {site.name}") for spot in fence_dots(site)]
    status_of = dict(zip(shipments["shipment"], shipments["status"], strict=True))
    for shipment_id, path in trails.items():
        if shipment_id in status_of:
            colour = _rgb(STATUS_COLOURS[status_of[shipment_id]], 170)
            dots += [dot(TRAIL, shipment_id, spot, colour, 2.5, tips[shipment_id]) for spot in sampled(path)]
    where = {site.id: (site.lon, site.lat) for site in sites}
    in_view = [tuple(d["position"]) for d in dots if d["kind"] in (SHIPMENT, TRACKER, TRAIL)]
    in_view += [where[s] for s in (*shipments["origin"], *shipments["destination"]) if s in where]
    return Deck(layers=[layer(dots)], initial_view_state=fit(in_view or list(where.values()), height_px),
                    tooltip={"text": "{tip}"}, map_style=None)  # fmt: skip
