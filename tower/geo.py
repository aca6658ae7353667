"""Geometry on the Earth's surface: distances, routes as polylines, geofences. Pure functions."""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field

EARTH_RADIUS_M = 6_371_008.8

LatLon = tuple[float, float]


def distance_m(a: LatLon, b: LatLon) -> float:
    """Great-circle (haversine) distance in metres."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(a: LatLon, b: LatLon) -> float:
    """Initial course from a to b, degrees clockwise from north in [0, 360)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    y = math.sin(lon2 - lon1) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return math.degrees(math.atan2(y, x)) % 360


def offset(point: LatLon, north_m: float, east_m: float) -> LatLon:
    """The point moved by small distances north and east (equirectangular; fine below ~10 km)."""
    lat, lon = point
    return (
        lat + math.degrees(north_m / EARTH_RADIUS_M),
        lon + math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat)))),
    )


@dataclass(frozen=True)
class Route:
    """A polyline with distances along it, for positions by distance and distances from it."""

    points: tuple[LatLon, ...]
    cumulative_m: tuple[float, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValueError("a route needs at least two points")
        total, cumulative = 0.0, [0.0]
        for a, b in zip(self.points, self.points[1:], strict=False):
            total += distance_m(a, b)
            cumulative.append(total)
        object.__setattr__(self, "cumulative_m", tuple(cumulative))

    @property
    def length_m(self) -> float:
        return self.cumulative_m[-1]

    def position(self, along_m: float) -> tuple[LatLon, float]:
        """(point, heading) at a distance along the route, clamped to its ends."""
        along_m = min(max(along_m, 0.0), self.length_m)
        index = min(bisect_right(self.cumulative_m, along_m) - 1, len(self.points) - 2)
        a, b = self.points[index], self.points[index + 1]
        span = self.cumulative_m[index + 1] - self.cumulative_m[index]
        t = (along_m - self.cumulative_m[index]) / span if span else 0.0
        return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t), bearing_deg(a, b)

    def distance_from(self, point: LatLon) -> tuple[float, float]:
        """(metres from the route, metres along it at the nearest point), in a local flat projection."""
        best = (math.inf, 0.0)
        for index, (a, b) in enumerate(zip(self.points, self.points[1:], strict=False)):
            ax, ay = _local(a, point)
            bx, by = _local(b, point)
            dx, dy = bx - ax, by - ay
            length2 = dx * dx + dy * dy
            t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
            gap = math.hypot(ax + t * dx, ay + t * dy)
            if gap < best[0]:
                best = (gap, self.cumulative_m[index] + t * (self.cumulative_m[index + 1] - self.cumulative_m[index]))
        return best


def _local(p: LatLon, origin: LatLon) -> tuple[float, float]:
    """p in metres east/north of origin."""
    x = math.radians(p[1] - origin[1]) * EARTH_RADIUS_M * math.cos(math.radians(origin[0]))
    y = math.radians(p[0] - origin[0]) * EARTH_RADIUS_M
    return x, y


def inside_polygon(point: LatLon, polygon: tuple[LatLon, ...]) -> bool:
    """Ray casting in lat/lon; fine for site-sized polygons away from the poles and the antimeridian."""
    lat, lon = point
    inside = False
    for (lat1, lon1), (lat2, lon2) in zip(polygon, polygon[1:] + polygon[:1], strict=False):
        if (lat1 > lat) != (lat2 > lat) and lon < lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1):
            inside = not inside
    return inside
