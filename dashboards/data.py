"""The dashboard's one data-access layer: kept reads, and the few writes an operator makes.

Pages never open the store, the alert book or master data themselves. Live reads are kept for every
session (dashboards/kept.py: fresh for REFRESH_S, the live parts' rhythm; older ones returned at once
while they are read again), keyed by where they read from, so a test or a second dashboard on
another store never sees another's frames; a person's action forgets them all.
Times are epoch milliseconds in event time; "as of" is the newest event time in the store.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd
import pydeck as pdk

from alerts.book import AlertBook
from alerts.rules import ColdChainRule, PredictedDelayRule, Rule, RuleSet, TrendRule, load_rules
from alerts.shipment_view import RuleRoles, ShipmentView, shipment_views
from dashboards import docks, health, kept, kpis, maps, shipments
from dashboards.kept import expire, live
from tower.config import load_settings
from tower.contract import DeviceKind
from tower.domain import ACTIVE_STATUSES, ALERT_STATUSES, ON_THE_ROAD
from tower.masterdata.live import LiveMaster
from tower.masterdata.model import Equipment
from tower.masterdata.store import MasterStore
from tower.masterdata.view import MasterData, ShipmentPlan
from tower.roles import Actor, Permission
from tower.store import Store, open_store
from tower.timeutil import now_ms

REFRESH_S = kept.FRESH_S
MINUTE, HOUR, DAY_MS = 60_000, 3_600_000, 86_400_000
MAX_TRAILS = 25  # the map draws travelled trails for at most this many shipments at once
TRACK_EVERY_MS = MINUTE  # shipment detail: positions and temperatures as 1-minute means
SERIES_POINTS = 720  # a device's readings over a period: at most this many means (charts draw fewer)


@dataclass(frozen=True)
class Source:
    """Where the dashboard reads from; every kept read is keyed by it."""

    store: str
    alerts_db: str
    master_db: str
    network: str | None
    rules: str


def source() -> Source:
    settings = load_settings()
    return Source(settings.store, str(settings.alerts_db), str(settings.master_db),
                  str(settings.network) if settings.network else None, settings.alert_rules)  # fmt: skip


class Master:
    """One revision of master data with the rules, and what the pages derive from them."""

    def __init__(self, data: MasterData, rules: RuleSet) -> None:
        self.data = data
        self.rules = rules
        self.roles = RuleRoles.of(rules)
        self.limits = health.Limits.of(rules)
        self.trend_rules = frozenset(rule.id for rule in rules.rules if isinstance(rule, TrendRule))
        self.plans: dict[str, ShipmentPlan] = data.plans
        self.site_names = {site.id: site.name for site in data.network.sites}
        self.machines: dict[str, Equipment] = data.machines

    @functools.cached_property
    def routes(self) -> dict:
        """Planned routes to draw: every lane's, and the explicit route of any shipment without a lane."""
        routes = {lane.id: self.data.network.lane_route(lane.id) for lane in self.data.network.lanes}
        routes |= {plan.lane: plan.route for plan in self.plans.values() if plan.lane not in routes}
        return routes

    def rule_for(self, rule_type: type[Rule], plan: ShipmentPlan) -> Rule | None:
        """The first rule of that type whose scope takes this shipment's tracker."""
        return next((rule for rule in self.rules.rules if isinstance(rule, rule_type) and rule.scope.matches(
            DeviceKind.SHIPMENT, plan.tracker, plan.origin.id, plan.cargo, plan.origin.type)), None)  # fmt: skip


# Process-wide (not Streamlit's cache_resource: kept reads run these in a thread with no session).
@functools.cache
def _live_master(master_db: str, network: str | None) -> LiveMaster:
    return LiveMaster(MasterStore(master_db), Path(network) if network else None)


@functools.lru_cache(maxsize=2)
def _master(src: Source, revision: int) -> Master:
    return Master(_live_master(src.master_db, src.network).current(), load_rules(src.rules))


def master(src: Source) -> Master:
    """The current revision of master data (a new shipment shows within a refresh, no restart)."""
    return _master(src, _live_master(src.master_db, src.network).current().revision)


@functools.cache
def _store(url: str) -> Store:
    return open_store(url, load_settings())


@functools.cache
def _book(path: str) -> AlertBook:
    return AlertBook(path)


def _with_ms(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(ts_ms=frame["ts"].astype("datetime64[ms, UTC]").astype("int64")) if "ts" in frame else frame


# -- network level -------------------------------------------------------------------------------


@live
def devices(src: Source) -> pd.DataFrame:
    """device_id, kind, last_ms, status, expected (should be reporting now)."""
    found = _store(src.store).devices()
    frame = pd.DataFrame(
        [(d.device_id, d.kind.value, d.last_seen_ms, d.status.value if d.status else None) for d in found],
        columns=["device_id", "kind", "last_ms", "status"],
    )
    table = shipment_table(src)
    on_road = set(table.loc[table["status"].isin(ON_THE_ROAD), "tracker"])
    tracked = {plan.tracker for plan in master(src).plans.values()}
    # a tracker is expected to report while its shipment is on the road; one with no plan at all, always
    frame["expected"] = (frame["kind"] != DeviceKind.SHIPMENT.value) | frame["device_id"].isin(on_road) | ~frame[
        "device_id"].isin(tracked)  # fmt: skip
    return frame


@live
def as_of(src: Source) -> int:
    """The newest event time in the store (the wall clock when it is empty)."""
    return _store(src.store).as_of_ms()


@live
def alerts_frame(src: Source, since_ms: int) -> pd.DataFrame:
    """The alert book's alerts open now or opened/resolved since, without runbooks."""
    rows = _book(src.alerts_db).alerts_since(since_ms)
    columns = ["id", "rule", "entity", "device", "kind", "site", "severity", "status", "opened_ms", "fired_ms",
               "raised_wall_ms", "acked_ms", "acked_by", "resolved_ms", "resolved_wall_ms", "closed_ms", "value",
               "detail"]  # fmt: skip
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("fired_ms", "raised_wall_ms", "acked_ms", "resolved_ms", "resolved_wall_ms", "value"):
        frame[column] = frame[column].astype("float64")
    return frame


@live
def latest(src: Source, kind: DeviceKind) -> pd.DataFrame:
    return _with_ms(_store(src.store).latest(kind))


@live
def shipment_table(src: Source) -> pd.DataFrame:
    """Every shipment of the master data, where it stands (alerts.shipment_view, as the API and CLI)."""
    m = master(src)
    now = as_of(src)
    alerts = alerts_frame(src, now - 2 * DAY_MS)[["rule", "entity", "severity", "status"]].to_dict("records")
    views = shipment_views(m.plans, _book(src.alerts_db).tracking(), alerts, m.roles, now)
    return pd.DataFrame([vars(view) for view in views], columns=[f.name for f in fields(ShipmentView)])


@live
def unplanned_trackers(src: Source) -> pd.DataFrame:
    """Trackers reporting with no shipment planned for them: still on the map, at their newest position."""
    return shipments.unplanned_trackers(latest(src, DeviceKind.SHIPMENT), master(src).data)


@live
def overview(src: Source, period_ms: int) -> list[kpis.Kpi]:
    now = as_of(src)
    store = _store(src.store)
    counts = (store.reading_count(now - kpis.RATE_WINDOW_MS, now + 1),
              store.reading_count(now - 2 * kpis.RATE_WINDOW_MS, now - kpis.RATE_WINDOW_MS))  # fmt: skip
    alerts = alerts_frame(src, now - 2 * period_ms)
    return kpis.overview(shipment_table(src), alerts, devices(src), master(src).roles, counts, now, period_ms,
                         now_ms())  # fmt: skip


@live
def trail(src: Source, tracker: str, since_ms: int, until_ms: int) -> list[list[float]]:
    """[[lon, lat], ...] of a tracker, as 5-minute means."""
    frame = _store(src.store).readings(tracker, ["lat", "lon"], since_ms, until_ms, every_ms=5 * MINUTE)
    frame = frame.dropna(subset=["lat", "lon"]) if not frame.empty else frame
    return [[round(lon, 5), round(lat, 5)] for lat, lon in zip(frame.get("lat", []), frame.get("lon", []), strict=True)]


def network_map(src: Source, shown: pd.DataFrame, trails_for: list[str], when: Callable[[float | None], str],
                height_px: int, detail: bool = True) -> pdk.Deck:  # fmt: skip
    """The map of the shown shipments, with the travelled trails of `trails_for` (shipment ids), fitted
    to a map of that height; `when` formats times for the tooltips; `detail`: their planned routes
    and their sites' geofences drawn (maps.deck)."""
    m = master(src)
    now = as_of(src)
    paths = {}
    for shipment_id in trails_for[:MAX_TRAILS]:
        plan = m.plans[shipment_id]
        paths[shipment_id] = trail(src, plan.tracker, plan.departure_ms, now + 1)
    machines = equipment_health(src)
    site_health = machines.groupby("site").agg(machines=("equipment", "size"), health=("health", "min")).reset_index()
    return maps.deck(shown, m.routes, m.data.network.sites, site_health, paths, unplanned_trackers(src), when,
                     height_px, detail)  # fmt: skip


def read_start_page_ahead(src: Source, period_ms: int) -> None:
    """The start page's reads (views/overview.py), made in the background while someone signs in:
    nothing is shown before the sign-in, and what is read is kept for every session anyway."""
    for read, args in ((as_of, ()), (shipment_table, ()), (overview, (period_ms,)), (equipment_health, ()),
                       (unplanned_trackers, ())):  # fmt: skip
        kept.read_ahead(read, src, *args)


# -- one shipment ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShipmentDetail:
    plan: ShipmentPlan
    row: dict  # its shipment_table row
    track: pd.DataFrame  # ts_ms, lat, lon, temp_c, speed_kmh: 1-minute means from departure
    eta: pd.DataFrame | None  # ts_ms, eta_early_ms, eta_ms, eta_late_ms
    timeline: pd.DataFrame  # ts_ms, event, detail
    excursion_min: float  # the cold-chain rule's own count, as the engine tracks it (frozen at delivery)
    budget_min: float | None  # the cold-chain rule's excursion budget (None: no budget, or not cold chain)


@live
def shipment_detail(src: Source, shipment_id: str) -> ShipmentDetail | None:
    m = master(src)
    plan = m.plans.get(shipment_id)
    if plan is None:
        return None
    table = shipment_table(src)
    row = table[table["shipment"] == shipment_id].iloc[0].to_dict()
    end = row["arrival_ms"] + 30 * MINUTE if pd.notna(row["arrival_ms"]) else as_of(src) + 1
    fields = ["lat", "lon", "temp_c", "speed_kmh"]
    track = _with_ms(_store(src.store).readings(plan.tracker, fields, plan.departure_ms - HOUR, int(end),
                                                TRACK_EVERY_MS))  # fmt: skip
    track = track.reindex(columns=["ts_ms", *fields])
    on_road = track[(track["ts_ms"] >= plan.departure_ms)]
    if pd.notna(row["arrival_ms"]):
        on_road = on_road[on_road["ts_ms"] <= row["arrival_ms"]]  # the ETA stops at delivery
    delay = m.rule_for(PredictedDelayRule, plan)
    eta = shipments.eta_band(plan, delay, m.data, on_road) if delay else None
    mine = alerts_frame(src, plan.departure_ms - HOUR).query("entity == @shipment_id")
    book = _book(src.alerts_db)
    steps = [{**step, "rule": rule} for alert_id, rule in zip(mine["id"], mine["rule"], strict=True)
             for step in book.history(alert_id)]  # fmt: skip
    cold = m.rule_for(ColdChainRule, plan) if plan.cargo_type.controlled else None
    return ShipmentDetail(plan, row, track, eta, shipments.timeline(plan, on_road, steps, row["arrival_ms"]),
                          row["excursion_min"],
                          cold.budget / MINUTE if cold and cold.budget is not None else None)  # fmt: skip


# -- sites and equipment -------------------------------------------------------------------------


@live
def equipment_health(src: Source) -> pd.DataFrame:
    m = master(src)
    alerts = alerts_frame(src, as_of(src) - DAY_MS)
    return health.health_table(m.machines, latest(src, DeviceKind.EQUIPMENT), alerts, m.limits, m.trend_rules)


@live
def series(src: Source, device_id: str, fields: tuple[str, ...], period_ms: int) -> pd.DataFrame:
    """A device's readings over the period ending as of now, averaged to at most SERIES_POINTS."""
    now = as_of(src)
    every = max(MINUTE, period_ms // SERIES_POINTS // MINUTE * MINUTE)
    frame = _store(src.store).readings(device_id, list(fields), now - period_ms, now + 1, every_ms=every)
    return _with_ms(frame).reindex(columns=["ts", "ts_ms", *fields])


def machine_limits(src: Source, machine: str) -> dict[str, float]:
    """The machine's limit per signal, as the rules judge it (relative to its healthy ranges)."""
    group = master(src).machines.get(machine)
    return master(src).limits.of_machine(group.healthy.ranges() if group else {})


def projections(src: Source, machine: str, period_ms: int) -> dict[str, tuple[float | None, str]]:
    """Per signal: hours to its limit on the current trend, and the trend model's own words."""
    frame = series(src, machine, tuple(health.SIGNALS), period_ms)
    own = machine_limits(src, machine)
    return {name: health.projection(frame, name, master(src).limits, own) for name in health.SIGNALS}


NO_SITE = "(sensors and machines not in master data)"


@live
def monitored_sites(src: Source) -> list[str]:
    """Sites with warehouse sensors or machines, and "" for devices reporting that no site claims."""
    network = master(src).data.network
    with_devices = {s.site for s in network.warehouse_sensors} | {group.site for group in network.equipment}
    sites = [site.id for site in network.sites if site.id in with_devices]
    known = {s.id for s in network.warehouse_sensors} | set(master(src).machines)
    strays = any(d not in known for kind in (DeviceKind.WAREHOUSE, DeviceKind.EQUIPMENT)
                 for d in latest(src, kind).get("device_id", []))  # fmt: skip
    return [*sites, ""] if strays else sites


@live
def site_sensors(src: Source, site: str) -> pd.DataFrame:
    """The site's warehouse sensors with their newest reading (site "": sensors no site claims)."""
    network = master(src).data.network
    newest = latest(src, DeviceKind.WAREHOUSE).set_index("device_id")
    if site:
        sensors = [(s.id, s.zone, s.setpoint_c, s.min_c, s.max_c) for s in network.warehouse_sensors if s.site == site]
    else:
        known = {s.id for s in network.warehouse_sensors}
        sensors = [(device, "", None, None, None) for device in newest.index if device not in known]
    rows = []
    for sensor, zone, setpoint, low, high in sensors:
        reading = newest.loc[sensor].to_dict() if sensor in newest.index else {}
        rows.append({"sensor": sensor, "zone": zone, "setpoint_c": setpoint, "min_c": low, "max_c": high,
                     "temp_c": reading.get("temp_c"), "humidity_pct": reading.get("humidity_pct"),
                     "dock_door_open": reading.get("dock_door_open"), "occupancy_pct": reading.get("occupancy_pct"),
                     "last_ms": reading.get("ts_ms")})  # fmt: skip
    return pd.DataFrame(rows, columns=["sensor", "zone", "setpoint_c", "min_c", "max_c", "temp_c", "humidity_pct",
                                       "dock_door_open", "occupancy_pct", "last_ms"])  # fmt: skip


@live
def dock_activity(src: Source, site: str, period_ms: int) -> pd.DataFrame:
    """Dock door openings and minutes open per sensor and hour over the period (dashboards/docks.py)."""
    now = as_of(src)
    hours = []
    for sensor in site_sensors(src, site)["sensor"]:
        readings = _with_ms(_store(src.store).readings(sensor, ["dock_door_open"], now - period_ms, now + 1))
        hours.append(docks.openings_per_hour(sensor, readings))
    hours = [frame for frame in hours if not frame.empty]
    frame = pd.concat(hours, ignore_index=True) if hours else pd.DataFrame(columns=docks.COLUMNS)
    return frame[frame["openings"] > 0].reset_index(drop=True)


# -- alerts ------------------------------------------------------------------------------------------

# What each action needs (tower.roles); closing a resolved alert is part of resolving it.
ACTION_PERMISSION: dict[str, Permission] = {"acknowledge": "ack", "resolve": "resolve", "close": "resolve"}
QUEUES = {"active": ACTIVE_STATUSES, "pending": ("pending",), "all": ALERT_STATUSES}


def act_on_alert(src: Source, person: Actor, alert_id: str, action: str, note: str) -> dict:
    """acknowledge | resolve | close as the signed-in person (their name is what the audit trail
    records); PermissionError if their role may not, ValueError says why the alert cannot."""
    if not person.may(ACTION_PERMISSION[action]):
        raise PermissionError(f"{person.name} is a {person.role} and may not {action} alerts")
    alert = _book(src.alerts_db).act(alert_id, action, person.name, note, now_ms(), via="dashboard")
    expire()  # statuses, KPIs and the queue all show it at once
    return alert


def silence_like(src: Source, person: Actor, alert: dict, hours: float, note: str) -> int:
    """Hold notifications of this rule on this entity for some hours (admins); the silence's id."""
    if not person.may("silence"):
        raise PermissionError(f"{person.name} is a {person.role} and may not set silences")
    starts = now_ms()
    return _book(src.alerts_db).silence({"rule": alert["rule"], "entity": alert["entity"]}, starts,
                                        starts + int(hours * HOUR), person.name, note)  # fmt: skip


@live
def active_alerts_of(src: Source, entity: str) -> pd.DataFrame:
    """An entity's active alerts (firing or acknowledged), most severe first: why it has its status."""
    queue = alert_queue(src, "active")
    return queue[queue["entity"] == entity].reset_index(drop=True)


@live
def alert_queue(src: Source, queue: str) -> pd.DataFrame:
    """The queue: active (firing or acknowledged) or pending alerts, most severe and oldest first;
    or every alert, newest first ('all')."""
    rows = _book(src.alerts_db).alerts("all" if queue == "all" else "open", limit=5000)
    frame = pd.DataFrame([row for row in rows if row["status"] in QUEUES[queue]],
                         columns=["id", "severity", "status", "rule", "entity", "site", "kind", "opened_ms",
                                  "fired_ms", "acked_by", "detail"])  # fmt: skip
    return frame.reset_index(drop=True)


@dataclass(frozen=True)
class AlertDetail:
    alert: dict  # with its runbook
    history: list[dict]  # the audit trail, oldest first
    deliveries: list[dict]


@live
def alert_detail(src: Source, alert_id: str) -> AlertDetail | None:
    """The alert with its runbook, its audit trail and its deliveries."""
    book = _book(src.alerts_db)
    alert = book.get(alert_id)
    if alert is None:
        return None
    return AlertDetail(alert, book.history(alert_id), book.deliveries(alert_id))
