"""Every page under Streamlit's AppTest (the server side of a browser session) on the seeded store:
what each shows, the decks the browser gets (valid layer props, plain-text tooltips, a view that
fits every shipment on the road), times in the chosen zone, finding a shipment, the map's selection."""

from __future__ import annotations

import json
import math

import pytest
from streamlit.testing.v1 import AppTest

from dashboards import data
from dashboards.maps import FIT_WIDTH_PX, NEUTRAL, POINTS
from dashboards.shipments import STATUS_COLOURS
from tests.dashboard.conftest import PAGES, page


def _decks(app: AppTest) -> list[dict]:
    """Each deck's spec as the browser gets it, with its tooltip (which travels beside the spec)."""
    return [{**json.loads(chart.proto.json), "tooltip": json.loads(chart.proto.tooltip or "null")}
            for chart in app.get("deck_gl_json_chart")]  # fmt: skip


def _layer(deck: dict, layer_id: str) -> dict:
    return next(layer for layer in deck["layers"] if layer["id"] == layer_id)


def _points(deck: dict, kind: str) -> list[dict]:
    """The dots of one kind (shipment, site, tracker) the deck draws."""
    return [row for row in _layer(deck, POINTS)["data"] if row["kind"] == kind]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_runs_without_exceptions(var, name):
    app = page(name)
    assert not app.exception, [e.message for e in app.exception]
    assert not app.error, [e.value for e in app.error]
    assert app.title[0].value


def test_overview_shows_the_kpis_and_the_map(var):
    app = page("overview")
    labels = [metric.label for metric in app.metric]
    assert labels[:4] == ["In transit", "On-time rate", "Predicted late", "Cold-chain compliance"]
    assert {"Active critical", "Mean time to acknowledge", "Devices offline", "Ingest lag"} <= set(labels)
    deck = _decks(app)[0]
    assert len(_points(deck, "shipment")) == 6
    # shipments and sites: routes, trails and geofences are the Map page's (said in the legend)
    assert {row["kind"] for row in _layer(deck, POINTS)["data"]} == {"shipment", "site"}
    assert any("routes, trails and geofences: on the Map page" in caption.value for caption in app.caption)


def _projected(view: dict, lon: float, lat: float, width: float, height: float) -> tuple[float, float]:
    """Where deck.gl draws a point (Web Mercator, 512 px world at zoom 0), in pixels from the top left."""
    scale = 512 * 2 ** view["zoom"]

    def y(latitude: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(latitude) / 2))

    x_px = (lon - view["longitude"]) / 360 * scale + width / 2
    y_px = -(y(lat) - y(view["latitude"])) / (2 * math.pi) * scale + height / 2
    return x_px, y_px


def in_view(deck: dict, width: float, height: float) -> list[bool]:
    """For each shipment of the deck, whether it is drawn inside a map of that size."""
    view = deck["initialViewState"]
    return [0 <= x <= width and 0 <= y <= height for x, y in (
        _projected(view, *row["position"], width, height) for row in _points(deck, "shipment"))]  # fmt: skip


def test_decks_are_valid_fit_every_shipment_and_have_plain_text_tooltips(var):
    """The deck JSON the browser gets: no layer prop but an accessor is an expression (pydeck made
    radius_units="pixels" into "@@=pixels", which drew a block over the whole replay), plain-text
    tooltips, the view fitted so that every shipment shown is on the map, and one layer (a browser
    without a GPU pays for each layer on every visit)."""
    decks = {"overview": _decks(page("overview"))[0], "map": _decks(page("map"))[0],
             "replay": _decks(page("shipment", shipment="SHP-ANT-LIE-02"))[-1]}  # fmt: skip
    for name, deck in decks.items():
        for layer in deck["layers"]:
            for prop, value in layer.items():
                if isinstance(value, str) and value.startswith("@@=") and not prop.startswith("get"):
                    raise AssertionError(f"{name} layer {layer['id']}: {prop} = {value!r} is not a valid value")
    assert all(len(deck["layers"]) == 1 for deck in decks.values())
    assert _layer(decks["replay"], POINTS)["radiusUnits"] == "pixels"
    assert len(_points(decks["replay"], "trail")) > 10 and len(_points(decks["replay"], "route")) > 10
    assert [row["id"] for row in _points(decks["replay"], "shipment")] == ["SHP-ANT-LIE-02"]  # where it is
    for name in ("overview", "map"):
        assert decks[name]["tooltip"] == {"text": "{tip}"}, name
        tips = [row["tip"] for row in _layer(decks[name], POINTS)["data"]]
        assert tips and not [tip for tip in tips if "<" in tip or ">" in tip], tips
        assert all(in_view(decks[name], FIT_WIDTH_PX, 420)), name  # the narrowest map the fit allows for
    assert "SHP-ANT-LIE-02 · at risk" in " ".join(row["tip"] for row in _points(decks["map"], "shipment"))


def test_map_filters_and_colours_that_mean_only_status(var):
    app = page("map")
    app.multiselect(key="f_status").set_value(["at risk"]).run()
    deck = _decks(app)[0]
    neutral = _points(deck, "route") + _points(deck, "geofence")  # its planned route, its sites' geofences
    assert {row["id"] for row in _points(deck, "route")} == {"ant-lie"}
    assert {row["id"] for row in _points(deck, "geofence")} == {"dc-antwerp", "cust-liege"}
    assert {tuple(row["fill"][:3]) for row in neutral} == {NEUTRAL}
    assert [s["id"] for s in _points(deck, "shipment")] == ["SHP-ANT-LIE-02"]
    trails = _points(deck, "trail")
    assert {t["id"] for t in trails} == {"SHP-ANT-LIE-02"} and len(trails) > 5  # few shown: trails drawn
    at_risk = _points(deck, "shipment")[0]["fill"][:3]
    assert at_risk == list(STATUS_COLOURS["at risk"]) and trails[0]["fill"][:3] == at_risk  # status colour
    sites = _points(deck, "site")
    assert len(sites) == len(data.master(data.source()).data.network.sites)
    assert len({(tuple(s["fill"]), tuple(s["line"])) for s in sites}) == 1  # sites: one neutral ring for all
    assert any("at risk (1)" in caption.value for caption in app.caption)  # the legend counts what is shown


def _select(app: AppTest, layer: str, picked: dict, index: int = 0) -> AppTest:
    """What the browser sends back when a point of a pickable layer is clicked (or, after a refresh
    that moved the layer's data, what is now at the selected index)."""
    app.session_state["map"] = {"selection": {"indices": {layer: [index]}, "objects": {layer: [picked]}}}
    return app.run()


def test_selecting_a_shipment_shows_its_eta_the_reason_and_a_link(var):
    app = _select(page("map"), POINTS, {"kind": "shipment", "id": "SHP-ANT-LIE-02"})
    assert [s.value for s in app.subheader] == ["Shipment SHP-ANT-LIE-02 · at risk"]
    shown = " ".join(m.value for m in app.markdown)
    assert "min late" in shown and "delivery-at-risk" in shown  # ETA vs promised, and why
    link = app.get("page_link")[0].proto
    assert (link.page, link.query_string) == ("shipment", "shipment=SHP-ANT-LIE-02")
    assert "SHP-ANT-LIE-02" in [t["id"] for t in _points(_decks(app)[0], "trail")]
    app = _select(app, POINTS, {"kind": "site", "id": "cust-gent"})  # the data moved under the same index
    assert [s.value for s in app.subheader] == ["Shipment SHP-ANT-LIE-02 · at risk"]  # the choice stays
    app = _select(page("map"), POINTS, {"kind": "site", "id": "dc-rotterdam"}, index=3)
    assert [s.value for s in app.subheader] == ["Site dc-rotterdam"]
    assert "wh-rtm-chilled" in app.dataframe[0].value["sensor"].tolist()
    app = _select(app, POINTS, {"kind": "trail", "id": "SHP-ANT-LIE-02"}, index=40)  # a trail's dot: its shipment
    assert [s.value for s in app.subheader] == ["Shipment SHP-ANT-LIE-02 · at risk"]


def test_shipment_page_shows_full_times_in_the_chosen_zone(var):
    app = page("shipment", shipment="SHP-ANT-LIE-02")
    assert app.selectbox(key="shipment_id").value == "SHP-ANT-LIE-02"
    assert any("at risk" in m.value for m in app.markdown)
    assert "**2026-01-05 " in " ".join(m.value for m in app.markdown) and " UTC**" in " ".join(
        m.value for m in app.markdown)  # fmt: skip
    app.selectbox(key="zone").set_value("Europe/Amsterdam").run()
    promised = [m.value for m in app.markdown if m.value.startswith("**2026-")]
    assert promised and all(value.endswith(" CET**") for value in promised), promised
    assert app.select_slider(key="replay_at_SHP-ANT-LIE-02").value is not None
    assert "CET" in app.caption[-1].value  # the replay's "At ..." line


def test_a_delivered_shipment_shows_its_arrival_and_the_budget_frozen_at_delivery(var):
    app = page("shipment", shipment="SHP-VNL-DUS-02")
    shown = " ".join(m.value for m in app.markdown) + " ".join(c.value for c in app.caption)
    assert "Arrived" in shown and "Frozen at delivery" in shown
    assert "**0**" in [m.value for m in app.markdown] and "nan" not in shown  # no open alert, and no "worst nan"
    assert "in transit (frozen at delivery)" in app.get("progress")[0].proto.text


@pytest.mark.parametrize("needle", ["SHP-ANT-LIE", "lie-02"])
def test_finding_a_shipment_by_id_order_or_customer(var, needle):
    app = page("shipment")
    app.text_input(key="shipment_search").input(needle).run()
    assert app.selectbox(key="shipment_id").options[0].startswith("SHP-ANT-LIE-02")
    table = data.shipment_table(data.source())
    row = table[table["shipment"] == "SHP-RTM-EIN-02"].iloc[0]
    for reference in (row["order"], row["customer"]):
        app.text_input(key="shipment_search").input(reference).run()
        assert any(option.startswith("SHP-RTM-EIN-02") for option in app.selectbox(key="shipment_id").options)
    app.text_input(key="shipment_search").input("no such thing").run()
    assert "No shipment matches" in app.warning[0].value
