"""Signing in to the dashboard: every page needs a signed-in person (app.py asks before it runs one).

Two ways in: a name and password from the users file (dashboards/users.py, `tower users add`), or
the operator's identity provider through Streamlit's `st.login` (OIDC, configured in
`.streamlit/secrets.toml` under `[auth]`), whose e-mail must be a user in the file for a role. The
person lives in the session's state under a key no widget has, so a browser cannot claim one; the
pages offer what the role may do, and dashboards/data.py checks the role again before any write.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import streamlit as st

from dashboards.users import Users
from tower.config import load_settings
from tower.roles import Actor

log = logging.getLogger("tower.dashboard")

_PERSON = "_tower_person"  # not a widget key: only this module sets it
FAILED_PAUSE_S = 1.0  # after a wrong password, so a session cannot try thousands a minute


@st.cache_resource
def _users(path: str) -> Users:
    return Users(Path(path))


def users() -> Users:
    return _users(str(load_settings().users_file))


def _identity_provider() -> bool:
    """Whether `[auth]` is configured for st.login (a secrets file may not exist at all)."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - Streamlit raises its own error types for a missing or bad secrets file
        return False


def person() -> Actor | None:
    """Who is signed in, if anyone (an identity-provider user with no entry in the users file is not)."""
    signed_in = st.session_state.get(_PERSON)
    if signed_in is None and _identity_provider() and st.user.is_logged_in:
        signed_in = users().known(str(st.user.get("email", "")))
        if signed_in is not None:
            st.session_state[_PERSON] = signed_in
            log.info("dashboard: %s (%s) signed in through the identity provider", signed_in.name, signed_in.role)
    return signed_in


def sign_in_form() -> None:
    """The only thing a visitor sees; the page they asked for (and its query) follows the sign-in."""
    st.title("Control Tower")
    if _identity_provider():
        if st.user.is_logged_in:
            st.warning(f"{st.user.get('email')} has no role on this dashboard; an admin can give one with "
                       f"'tower users add {st.user.get('email')} --role viewer'.")  # fmt: skip
            st.button("Sign out", on_click=st.logout)
            return
        st.button("Sign in with your organisation's account", on_click=st.login, type="primary")
    if not len(users()):
        st.info(f"No dashboard users yet. On the server: tower users add NAME --role admin (file: "
                f"{users().path}).")  # fmt: skip
        return
    with st.form("sign_in"):
        name = st.text_input("User name", key="sign_in_name")
        password = st.text_input("Password", type="password", key="sign_in_password")
        if st.form_submit_button("Sign in", type="primary", key="sign_in_submit"):
            found = users().check_password(name, password)
            if found is None:
                log.warning("dashboard: failed sign-in as %r", name[:64])
                time.sleep(FAILED_PAUSE_S)
                st.error("Wrong user name or password.")
            else:
                st.session_state[_PERSON] = found
                log.info("dashboard: %s (%s) signed in", found.name, found.role)
                st.rerun()


def sign_out_button(signed_in: Actor) -> None:
    st.sidebar.caption(f"Signed in as **{signed_in.name}** ({signed_in.role})")
    if st.sidebar.button("Sign out", key="sign_out", icon=":material/logout:"):
        st.session_state.pop(_PERSON, None)
        if _identity_provider() and st.user.is_logged_in:
            st.logout()
        st.rerun()
