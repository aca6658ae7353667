"""The network map as a pydeck Deck: planned routes, travelled trails, sites with their geofences and
equipment health, shipments coloured by status. Pure: frames in, a Deck out.

The basemap is left to Streamlit (`map_style=None`): Carto's light or dark style, following the
theme, with no token. What the browser receives is kept small: one row per shipment and site with
only the columns the layers draw, coordinates rounded to ~1 m, trails only for the shipments asked.
"""

from __future__ import annotations

import pandas as pd
import pydeck as pdk

from dashboards.shipments import STATUS_COLOURS, UNPLANNED_COLOUR
from tower.geo import Route
from tower.masterdata.model import Site

SHIPMENTS, SITES, TRAILS, UNPLANNED = "shipments", "sites", "trails", "unplanned"  # layer ids (selections)


def legend() -> str:
    """The status colours as a line of HTML, for a caption under the map."""
    return " ".join(f"<span style='color:rgb{colour}'>●</span> {status}" for status, colour in STATUS_COLOURS.items())


def _health_colour(health: float | None) -> list[int]:
    if health is None or pd.isna(health):
        return [120, 120, 120, 200]
    return [int(220 - 1.8 * health), int(60 + 1.2 * health), 60, 220]


def deck(shipments: pd.DataFrame, routes: dict[str, Route], sites: tuple[Site, ...], site_health: pd.DataFrame,
         trails: dict[str, list[list[float]]], unplanned: pd.DataFrame) -> pdk.Deck:  # fmt: skip
    """`site_health`: site, machines, health (worst); `trails`: shipment id -> [[lon, lat], ...];
    `unplanned`: trackers with no shipment planned (device_id, lat, lon), drawn at their newest position."""
    moving = shipments.assign(
        position=[[round(lon, 5), round(lat, 5)] for lat, lon in zip(shipments["lat"], shipments["lon"], strict=True)],
        colour=[[*STATUS_COLOURS[s], 230] for s in shipments["status"]],
        tip=[f"<b>{sid}</b> {status}<br/>{lane} · {cargo} · {customer}" for sid, status, lane, cargo, customer in
             shipments[["shipment", "status", "lane", "cargo", "customer"]].itertuples(index=False)],
    )[["shipment", "position", "colour", "tip"]]  # fmt: skip
    health = site_health.set_index("site") if not site_health.empty else pd.DataFrame(columns=["machines", "health"])
    site_rows = []
    for site in sites:
        machines = int(health["machines"].get(site.id, 0))
        worst = health["health"].get(site.id) if machines else None
        equipment = f"<br/>{machines} machines, worst health {worst:.0f}" if machines else ""
        site_rows.append({
            "site": site.id, "position": [site.lon, site.lat], "radius": site.geofence.radius_m or 0,
            "polygon": [[lon, lat] for lat, lon in site.geofence.polygon or ()],
            "colour": _health_colour(worst) if machines else [70, 130, 180, 200],
            "tip": f"<b>{site.name}</b> ({site.type}){equipment}",
        })  # fmt: skip
    site_frame = pd.DataFrame(site_rows, columns=["site", "position", "radius", "polygon", "colour", "tip"])
    strays = pd.DataFrame({
        "device": unplanned["device_id"],
        "position": [[round(x, 5), round(y, 5)] for y, x in zip(unplanned["lat"], unplanned["lon"], strict=True)],
        "tip": [f"<b>{device}</b> no shipment planned" for device in unplanned["device_id"]],
    })  # fmt: skip
    layers = [
        pdk.Layer("PathLayer", id="routes", get_path="path",
                  data=[{"path": [[lon, lat] for lat, lon in route.points]} for route in routes.values()],
                  get_color=[128, 128, 128, 140], width_min_pixels=2),
        pdk.Layer("PathLayer", id=TRAILS, data=[{"shipment": s, "path": p} for s, p in trails.items()],
                  get_path="path", get_color=[30, 136, 229, 220], width_min_pixels=3),
        pdk.Layer("ScatterplotLayer", id="geofences", data=site_frame[site_frame["radius"] > 0],
                  get_position="position", get_radius="radius", get_fill_color=[70, 130, 180, 40],
                  get_line_color=[70, 130, 180, 160], stroked=True, line_width_min_pixels=1),
        pdk.Layer("PolygonLayer", id="geofence-polygons", data=site_frame[site_frame["polygon"].map(len) > 0],
                  get_polygon="polygon", get_fill_color=[70, 130, 180, 40], get_line_color=[70, 130, 180, 160],
                  line_width_min_pixels=1),
        pdk.Layer("ScatterplotLayer", id=SITES, data=site_frame[["site", "position", "colour", "tip"]],
                  get_position="position", get_fill_color="colour", get_radius=200, radius_min_pixels=6,
                  stroked=True, get_line_color=[255, 255, 255], line_width_min_pixels=1, pickable=True),
        pdk.Layer("ScatterplotLayer", id=UNPLANNED, data=strays, get_position="position",
                  get_fill_color=[*UNPLANNED_COLOUR, 200], get_radius=150, radius_min_pixels=4, radius_max_pixels=10,
                  pickable=True),
        pdk.Layer("ScatterplotLayer", id=SHIPMENTS, data=moving, get_position="position", get_fill_color="colour",
                  get_radius=150, radius_min_pixels=4, radius_max_pixels=12, pickable=True),
    ]  # fmt: skip
    points = [*site_frame["position"], *strays["position"], *moving["position"]]
    centre = pd.DataFrame(points).mean() if points else pd.Series([0.0, 20.0])
    return pdk.Deck(
        layers=layers,
        initial_view_state=pdk.ViewState(longitude=float(centre[0]), latitude=float(centre[1]), zoom=7.4),
        tooltip={"html": "{tip}"},
        map_style=None,
    )
