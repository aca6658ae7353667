"""Alerts: the live queue (active: firing or acknowledged; pending; or the whole history) with
filters; a click on a row opens the alert: its detail, runbook, audit trail and notifications, and
the actions the signed-in person's role allows (acknowledge, resolve, close; silences for admins),
recorded under their name. Notification links open an alert here (`/alerts?alert=<id>`)."""

from __future__ import annotations

import streamlit as st

from dashboards import auth, data, ui
from tower.domain import SEVERITIES_WORST_FIRST

QUEUE_HELP = {
    "active": "firing or acknowledged: what the Overview and the Map count",
    "pending": "raised but waiting out their rule's hold; counted nowhere else until they fire",
    "all": "every alert, newest first",
}
NEXT_ACTIONS = {"pending": ("acknowledge", "resolve"), "firing": ("acknowledge", "resolve"),
                "acknowledged": ("resolve",), "resolved": ("close",), "closed": ()}  # fmt: skip

st.title("Alerts")
src = data.source()
person = auth.person()
filters = st.columns([2, 2, 2, 2])
shown = filters[0].segmented_control("Show", list(QUEUE_HELP), default="active", key="queue",
                                     help=" · ".join(f"{k}: {v}" for k, v in QUEUE_HELP.items()))  # fmt: skip
shown = shown or "active"
severities = filters[1].multiselect("Severity", list(SEVERITIES_WORST_FIRST), default=list(SEVERITIES_WORST_FIRST),
                                    key="severities")  # fmt: skip
rules = filters[2].multiselect("Rule", sorted(rule.id for rule in data.master(src).rules.rules), key="rules")
kinds = filters[3].multiselect("Kind", ["shipment", "warehouse", "equipment"], key="kinds")


@ui.live_part
def queue() -> None:
    frame = data.alert_queue(src, shown)
    frame = frame[frame["severity"].isin(severities)]
    frame = frame[frame["rule"].isin(rules)] if rules else frame
    frame = frame[frame["kind"].isin(kinds)] if kinds else frame
    frame = frame.reset_index(drop=True)
    counts = frame["severity"].value_counts()
    columns = st.columns(len(SEVERITIES_WORST_FIRST))
    for column, severity in zip(columns, SEVERITIES_WORST_FIRST, strict=True):
        column.metric(severity, int(counts.get(severity, 0)), border=True, help=f"{shown}: {QUEUE_HELP[shown]}")
    if frame.empty:
        st.info(f"No {shown if shown != 'all' else ''} alerts match.")
        return
    st.caption("Click a row to open the alert.")
    picked = ui.table(frame, "alerts", on_select="rerun", selection_mode="single-row").selection.rows
    if picked != st.session_state.get("_alerts_picked"):  # a new click, not the same selection on a refresh
        st.session_state["_alerts_picked"] = picked
        if picked:
            st.query_params["alert"] = frame["id"].iloc[picked[0]]
            st.rerun(scope="app")


queue()

selected = st.query_params.get("alert")
if not selected:
    st.stop()
found = data.alert_detail(src, selected)
if found is None:
    st.warning(f"No alert '{selected}'.")
    st.stop()
alert, runbook = found.alert, found.alert["runbook"]


@ui.live_part
def standing() -> None:
    """What the alert says now: the engine brings a firing alert's detail up to date, as the queue shows."""
    now = data.alert_detail(src, selected) or found
    shown = now.alert
    st.subheader(f"[{shown['severity']}] {shown['rule']} on {shown['entity']}")
    st.markdown(f"Status: **{shown['status']}**" + (f" by {shown['acked_by']}" if shown["acked_by"] else ""))
    st.write(shown["detail"])  # a resolved alert keeps its last
    if shown["status"] in ("resolved", "closed"):
        ended = next(row for row in reversed(now.history) if row["status"] == "resolved")
        st.caption(f"Resolved {ui.when(ended['at_ms'])} by {ended['actor']}: {ended['note'] or 'no note'}")


standing()
done = st.session_state.pop("_alerts_done", None)
if done:
    st.success(done)

allowed = [a for a in NEXT_ACTIONS[alert["status"]] if person.may(data.ACTION_PERMISSION[a])]
if allowed:
    # one field per alert and status: after an action the next one starts empty (the browser keeps a
    # field's text across reruns whatever the server's state says)
    note = st.text_input("Note for the audit trail", key=f"note_{alert['id']}_{alert['status']}")
    for column, action in zip(st.columns(len(allowed) + 3), allowed, strict=False):
        if column.button(action.capitalize(), key=f"act_{action}", type="primary" if action == allowed[0] else
                         "secondary"):  # fmt: skip
            try:
                acted = data.act_on_alert(src, person, alert["id"], action, note)
            except (ValueError, PermissionError) as problem:
                st.error(str(problem))
            else:
                st.session_state["_alerts_done"] = f"{acted['id']} is {acted['status']} (by {person.name})."
                st.rerun()  # the queue, this alert and its audit trail show it at once
elif NEXT_ACTIONS[alert["status"]]:
    st.caption(f"You are signed in as a {person.role}: acknowledging and resolving take the operator role.")

st.markdown(f"**Runbook** ({runbook['owner']}, respond within {runbook['respond_within'] // 60_000} min)")
st.markdown("\n".join(f"{n}. {step}" for n, step in enumerate(runbook["steps"], 1)))
st.markdown("**Audit trail**")
st.table([{"at": ui.when(row["at_ms"], with_seconds=True), "status": row["status"], "by": row["actor"],
           "note": row["note"]} for row in found.history])  # fmt: skip
if found.deliveries:
    st.markdown("**Notifications**")
    st.table([{"at": ui.when(d["at_ms"], with_seconds=True), "to": d["recipient"], "via": d["service"],
               "attempt": d["attempt"], "delivered": bool(d["ok"]), "error": d["error"]}
              for d in found.deliveries])  # fmt: skip
if person.may("silence"):
    with st.expander("Silence notifications of this rule on this entity"):
        hours = st.number_input("Hours", min_value=0.5, max_value=24.0 * 14, value=2.0, step=0.5, key="silence_h")
        why = st.text_input("Why", key="silence_note", placeholder="e.g. maintenance window")
        if st.button("Silence", key="silence"):
            try:
                silence_id = data.silence_like(src, person, alert, hours, why)
                st.success(f"Silence {silence_id}: {alert['rule']} on {alert['entity']} for {hours:g} h.")
            except (ValueError, PermissionError) as problem:
                st.error(str(problem))
