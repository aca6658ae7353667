"""The network map as a pydeck Deck: planned routes, travelled trails, sites with their geofences,
shipments coloured by status. Pure: frames in, a Deck out.

Colours mean only status: a shipment's dot (and its trail) has its status colour; sites are
neutral rings, geofences and routes neutral grey, trackers with no plan dark grey. The view is
fitted to what is shown (the shipments with their origins and destinations), so no shipment on the
road is off-screen. Tooltips are plain text. The basemap is left to Streamlit (`map_style=None`):
Carto's light or dark style, following the theme, with no token. What the browser receives is kept
small: one row per shipment and site with only the columns the layers draw, coordinates rounded to
~1 m, trails only for the shipments asked.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import pydeck as pdk

from dashboards.shipments import STATUS_COLOURS, UNPLANNED_COLOUR
from tower.geo import Route
from tower.masterdata.model import Site

SHIPMENTS, SITES, TRAILS, UNPLANNED = "shipments", "sites", "trails", "unplanned"  # layer ids (selections)
SITE_COLOUR = (70, 80, 100)  # neutral: a site's ring says where, never how it is doing
FIT_WIDTH_PX, FIT_PADDING = 700, 0.8  # fit for a map at least this wide, the data within this share of it
MAX_FIT_ZOOM = 12.0


def legend(counts: dict[str, int] | None = None, lanes: bool = True) -> str:
    """The status colours as a line of HTML (with counts, if given) and the neutral shapes, for a
    caption; `lanes`: the map draws planned routes and trails (deck's `lanes`)."""
    statuses = " ".join(f"<span style='color:rgb{colour}'>●</span> {status}"
                        + (f" ({counts.get(status, 0)})" if counts is not None else "")
                        for status, colour in STATUS_COLOURS.items())  # fmt: skip
    return (f"{statuses} · <span style='color:rgb{SITE_COLOUR}'>◯</span> site · "
            f"<span style='color:rgb{UNPLANNED_COLOUR}'>●</span> tracker with no plan"
            + (" · grey lines: planned routes; trails in their shipment's colour" if lanes else
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


def legs(points: list[list[float]]) -> list[dict[str, list[float]]]:
    """A line through [lon, lat] points as its straight legs, for a LineLayer. deck.gl's PathLayer
    draws the same, but in a browser without a GPU (WebGL in software, SwiftShader) its shaders
    take ~0.45 s to compile on every page that draws one, a LineLayer's ~0.05 s."""
    return [{"from": a, "to": b} for a, b in zip(points, points[1:], strict=False)]


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
    routes and the sites' geofences (the Overview's map leaves them to the Map page: a browser
    without a GPU pays ~0.3 s for each more kind of layer it draws, and at the whole network's zoom
    a geofence is smaller than a pixel)."""
    status_of = dict(zip(shipments["shipment"], shipments["status"], strict=True))
    moving = shipments.assign(
        position=[[round(lon, 5), round(lat, 5)] for lat, lon in zip(shipments["lat"], shipments["lon"], strict=True)],
        colour=[_rgb(STATUS_COLOURS[s], 230) for s in shipments["status"]],
        tip=[f"{row.shipment} · {row.status}\n{row.lane} · {row.cargo} · {row.customer}\n"
             f"promised {when(row.promised_ms)}\n"
             + (f"arrived {when(row.arrival_ms)}" if pd.notna(row.arrival_ms) else f"ETA {when(row.eta_ms)}")
             + (f"\n{row.open_alerts} open alert(s), worst {row.worst}" if row.open_alerts else "")
             for row in shipments.itertuples(index=False)],
    )[["shipment", "position", "colour", "tip"]]  # fmt: skip
    health = site_health.set_index("site") if not site_health.empty else pd.DataFrame(columns=["machines", "health"])
    site_rows = []
    for site in sites:
        machines = int(health["machines"].get(site.id, 0))
        worst = health["health"].get(site.id) if machines else None
        equipment = f"\n{machines} machines, worst health {worst:.0f}" if machines and pd.notna(worst) else ""
        site_rows.append({
            "site": site.id, "position": [site.lon, site.lat], "radius": site.geofence.radius_m or 0,
            "polygon": [[lon, lat] for lat, lon in site.geofence.polygon or ()],
            "tip": f"{site.name} ({site.type}){equipment}",
        })  # fmt: skip
    site_frame = pd.DataFrame(site_rows, columns=["site", "position", "radius", "polygon", "tip"])
    strays = pd.DataFrame({
        "device": unplanned["device_id"],
        "position": [[round(x, 5), round(y, 5)] for y, x in zip(unplanned["lat"], unplanned["lon"], strict=True)],
        "tip": [f"{device}: no shipment planned" for device in unplanned["device_id"]],
    })  # fmt: skip
    neutral = [128, 128, 128]
    layers = [
        pdk.Layer("LineLayer", id=TRAILS, get_source_position="from", get_target_position="to", get_color="colour",
                  width_min_pixels=3, data=[{"shipment": s, **leg, "colour": _rgb(STATUS_COLOURS[status_of[s]], 170)}
                                            for s, path in trails.items() if s in status_of for leg in legs(path)]),
        pdk.Layer("ScatterplotLayer", id=SITES, data=site_frame[["site", "position", "tip"]], get_position="position",
                  get_radius=300, radius_min_pixels=7, radius_max_pixels=14, filled=True,
                  get_fill_color=[255, 255, 255, 200], stroked=True, get_line_color=_rgb(SITE_COLOUR, 255),
                  line_width_min_pixels=3, pickable=True),
        pdk.Layer("ScatterplotLayer", id=UNPLANNED, data=strays, get_position="position",
                  get_fill_color=_rgb(UNPLANNED_COLOUR, 200), get_radius=150, radius_min_pixels=4,
                  radius_max_pixels=10, pickable=True),
        pdk.Layer("ScatterplotLayer", id=SHIPMENTS, data=moving, get_position="position", get_fill_color="colour",
                  get_radius=150, radius_min_pixels=5, radius_max_pixels=12, stroked=True,
                  get_line_color=[255, 255, 255, 230], line_width_min_pixels=1, pickable=True),
    ]  # fmt: skip
    if lanes:
        layers[:0] = [
            pdk.Layer("LineLayer", id="routes", data=[leg for r in routes.values() for leg in legs(route_points(r))],
                      get_source_position="from", get_target_position="to", get_color=[*neutral, 120],
                      width_min_pixels=2),
            pdk.Layer("ScatterplotLayer", id="geofences", data=site_frame[site_frame["radius"] > 0],
                      get_position="position", get_radius="radius", get_fill_color=[*neutral, 30],
                      get_line_color=[*neutral, 140], stroked=True, line_width_min_pixels=1),
        ]  # fmt: skip
    polygons = site_frame[site_frame["polygon"].map(len) > 0] if lanes else site_frame.iloc[:0]
    if not polygons.empty:  # a layer type drawn only when needed: each costs the browser its shaders
        layers.insert(2, pdk.Layer("PolygonLayer", id="geofence-polygons", data=polygons, get_polygon="polygon",
                                   get_fill_color=[*neutral, 30], get_line_color=[*neutral, 140],
                                   line_width_min_pixels=1))  # fmt: skip
    return pdk.Deck(layers=layers, initial_view_state=fit(_in_view(shipments, sites, strays), height_px),
                    tooltip={"text": "{tip}"}, map_style=None)  # fmt: skip


def _in_view(shipments: pd.DataFrame, sites: tuple[Site, ...], strays: pd.DataFrame) -> list[tuple[float, float]]:
    """What the view must show: the shipments with their origins and destinations, and trackers with
    no plan; the whole network when nothing is shown."""
    where = {site.id: (site.lon, site.lat) for site in sites}
    points = [(lon, lat) for lat, lon in zip(shipments["lat"], shipments["lon"], strict=True)]
    points += [where[s] for s in (*shipments["origin"], *shipments["destination"]) if s in where]
    points += [tuple(position) for position in strays["position"]]
    return points or list(where.values())
