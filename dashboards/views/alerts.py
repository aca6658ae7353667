"""Alerts: the live queue by severity and age (or the whole history), filters, the selected
alert's runbook, audit trail and notifications, and acknowledge / resolve / close with the
operator's name. Notification links open an alert here (`/alerts?alert=<id>`)."""

from __future__ import annotations

import streamlit as st

from dashboards import data, ui
from tower.domain import SEVERITIES_WORST_FIRST
from tower.timeutil import rfc3339

st.title("Alerts")
src = data.source()
filters = st.columns([1, 2, 2, 2])
status = filters[0].segmented_control("Show", ["open", "all"], default="open", key="status") or "open"
severities = filters[1].multiselect("Severity", list(SEVERITIES_WORST_FIRST), default=list(SEVERITIES_WORST_FIRST),
                                    key="severities")  # fmt: skip
rules = filters[2].multiselect("Rule", sorted(rule.id for rule in data.master(src).rules.rules), key="rules")
kinds = filters[3].multiselect("Kind", ["shipment", "warehouse", "equipment"], key="kinds")


@ui.live_part
def queue() -> None:
    frame = data.alert_queue(src, status)
    frame = frame[frame["severity"].isin(severities)]
    frame = frame[frame["rule"].isin(rules)] if rules else frame
    frame = frame[frame["kind"].isin(kinds)] if kinds else frame
    counts = frame["severity"].value_counts()
    columns = st.columns(len(SEVERITIES_WORST_FIRST))
    for column, severity in zip(columns, SEVERITIES_WORST_FIRST, strict=True):
        column.metric(severity, int(counts.get(severity, 0)), border=True)
    if frame.empty:
        st.info(f"No {status if status == 'open' else ''} alerts match.")
        return
    ui.table(frame, "alerts")


queue()

selected = st.query_params.get("alert") or ""
selected = st.text_input("Alert id", value=selected, key="alert_id", placeholder="from the queue or a notification")
if selected:
    found = data.alert_detail(src, selected)
    if found is None:
        st.warning(f"No alert '{selected}'.")
    else:
        alert, history, deliveries = found
        runbook = alert["runbook"]
        st.subheader(f"[{alert['severity']}] {alert['rule']} on {alert['entity']}: {alert['status']}")
        st.write(alert["detail"])
        st.markdown(f"**Runbook** ({runbook['owner']}, respond within {runbook['respond_within'] // 60_000} min)")
        st.markdown("\n".join(f"{n}. {step}" for n, step in enumerate(runbook["steps"], 1)))
        st.markdown("**Audit trail**")
        st.table([{"at": rfc3339(row["at_ms"]), "status": row["status"], "by": row["actor"], "note": row["note"]}
                  for row in history])  # fmt: skip
        if deliveries:
            st.markdown("**Notifications**")
            st.table([{"at": rfc3339(d["at_ms"]), "to": d["recipient"], "via": d["service"], "attempt": d["attempt"],
                       "delivered": bool(d["ok"]), "error": d["error"]} for d in deliveries])  # fmt: skip
        with st.form("act"):
            by = st.text_input("Your name", key="by")
            note = st.text_input("Note", key="note")
            action = st.radio("Action", ["acknowledge", "resolve", "close"], horizontal=True, key="action")
            if st.form_submit_button("Apply"):
                if not by.strip():
                    st.error("Enter your name: it is recorded in the audit trail.")
                else:
                    try:
                        done = data.act_on_alert(src, alert["id"], action, by.strip(), note)
                        st.success(f"{done['id']} is {done['status']} (by {by.strip()}).")
                    except ValueError as problem:
                        st.error(str(problem))
