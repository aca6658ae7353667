"""Alerts: the live queue by severity and age, the selected alert's runbook and audit trail, and
acknowledge / resolve / close with the operator's name. Notification links open an alert here
(`/alerts?alert=<id>`)."""

from __future__ import annotations

import streamlit as st

from dashboards.data import REFRESH_S, SEVERITY_ORDER, act_on_alert, alert_detail, alert_queue
from tower.timeutil import rfc3339

st.title("Alerts")
status = st.segmented_control("Show", ["open", "all"], default="open", key="status") or "open"
severities = st.multiselect("Severity", list(SEVERITY_ORDER), default=list(SEVERITY_ORDER), key="severities")


@st.fragment(run_every=REFRESH_S)
def queue() -> None:
    frame = alert_queue(status)
    frame = frame[frame["severity"].isin(severities)]
    counts = frame["severity"].value_counts()
    columns = st.columns(len(SEVERITY_ORDER))
    for column, severity in zip(columns, SEVERITY_ORDER, strict=True):
        column.metric(severity, int(counts.get(severity, 0)))
    if frame.empty:
        st.info(f"No {status if status == 'open' else ''} alerts.")
        return
    st.dataframe(frame, hide_index=True, width="stretch", key="queue")
    st.download_button("CSV", frame.to_csv(index=False), "alerts.csv", "text/csv", key="queue_csv")


queue()

selected = st.query_params.get("alert") or ""
selected = st.text_input("Alert id", value=selected, key="alert_id", placeholder="from the queue or a notification")
if selected:
    found = alert_detail(selected)
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
                        done = act_on_alert(alert["id"], action, by.strip(), note)
                        st.success(f"{done['id']} is {done['status']} (by {by.strip()}).")
                    except ValueError as problem:
                        st.error(str(problem))
