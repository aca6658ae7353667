"""The one configuration object: environment variables `TOWER_*` over an optional YAML file.

Precedence (highest first): command-line flags (applied by the CLI), `TOWER_*` environment
variables, the YAML file named by `TOWER_CONFIG`, the defaults below.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOWER_", extra="forbid")

    # Where things live
    store: str = Field(
        "sqlite:///var/tower.db",
        description="store URL: sqlite:///relative.db, sqlite:////abs.db (default: tower.db in the data directory)",
    )
    broker: str = Field(
        "mqtt://127.0.0.1:1883", description="MQTT broker URL: mqtt[s]://[account:password@]host:port (mqtts = TLS)"
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field("5", description="MQTT protocol; 3.1.1 only for brokers without v5")
    mqtt_ca_file: Path | None = Field(
        None, description="mqtts: CA certificate(s) the broker's certificate must chain to (default: the system's)"
    )
    mqtt_cert_file: Path | None = Field(None, description="mqtts: client certificate, if the broker asks for one")
    mqtt_key_file: Path | None = Field(None, description="mqtts: the client certificate's private key")
    data_dir: Path = Field(Path("var"), description="local state: spool, broker persistence, demo logs")

    # Collector
    ingest_client_id: str = Field("tower-ingest", description="fixed MQTT client id of the persistent session")
    ingest_share_group: str | None = Field(None, description="join $share/<group>/... to split load")
    session_expiry_s: int = Field(7 * 24 * 3600, description="how long the broker keeps our session offline")
    inflight_max: int = Field(10_000, ge=1, le=65_535, description="unacknowledged messages the broker may send")
    batch_max: int = Field(2_000, ge=1, description="readings per store transaction at most")
    batch_linger_ms: int = Field(50, ge=1, description="longest a reading waits for its batch to fill")
    max_payload_bytes: int = Field(256 * 1024, description="larger payloads are dead-lettered")
    max_future_skew_s: int = Field(300, description="readings stamped further in the future are rejected")
    dead_letter_payload_bytes: int = Field(1024, description="payload bytes kept in a dead-letter record")
    dead_letter_cap: int = Field(100, ge=1, description="dead letters kept per topic per window; more are counted")
    dead_letter_cap_window_s: float = Field(3600.0, gt=0, description="the window of TOWER_DEAD_LETTER_CAP")
    spool_max_bytes: int = Field(512 * 1024 * 1024, description="on-disk spool bound; full = stop acking")
    stats_interval_s: float = Field(10.0, description="seconds between one-line collector stats")

    # InfluxDB backend (TOWER_STORE=influxdb://host:8086?org=...&bucket=... or http(s)://host:8086)
    influx_org: str | None = Field(None, description="InfluxDB organisation, unless in the store URL")
    influx_bucket: str | None = Field(None, description="InfluxDB bucket (1.x: database), unless in the store URL")
    influx_token: SecretStr | None = Field(None, description="InfluxDB API token; environment only, never logged")
    influx_token_file: Path | None = Field(None, description="file holding the token (Docker/Kubernetes secrets)")
    influx_max_retry_time_s: float = Field(
        30.0, gt=0, description="a failed write is retried with back-off this long, then spooled"
    )

    # Master data (shipments come from the TMS: MQTT plans, `tower shipments import`, the HTTP API)
    network: Path | None = Field(None, description="network file (sites, lanes, cargo types, equipment); reloaded")

    # HTTP API (`tower api`)
    api_host: str = Field("127.0.0.1", description="address `tower api` listens on")
    api_port: int = Field(8600, ge=1, le=65_535, description="port `tower api` listens on")
    api_tokens_file: Path | None = Field(None, description="API tokens file (hashes); default in $TOWER_DATA_DIR")
    api_token: SecretStr | None = Field(None, description="one more API token, from the environment; never logged")
    api_token_name: str = Field("integration", description="the name TOWER_API_TOKEN acts under in audit trails")
    api_token_role: str = Field("integration", description="its role: viewer, operator, integration or admin")

    # Dashboard (`tower dashboard`)
    dashboard_host: str = Field("127.0.0.1", description="address `tower dashboard` listens on")
    dashboard_users_file: Path | None = Field(
        None, description="dashboard users file (argon2 hashes, roles); default $TOWER_DATA_DIR/dashboard-users.yaml"
    )

    # Alert engine
    alert_rules: str = Field("default", description="rule file, or 'default' (alerts/rules/default.yaml)")
    oncall: Path | None = Field(None, description="on-call file (contacts, schedules, policies, routes)")
    alerts_client_id: str = Field("tower-alerts", description="MQTT client id of the alert engine's session")
    alerts_snapshot_s: float = Field(
        10.0, gt=0, description="seconds between snapshots of the rule state (readings are acknowledged after one)"
    )
    alerts_close_after_s: float = Field(24 * 3600.0, gt=0, description="resolved alerts close after this")
    alerts_inflight_max: int = Field(
        65_535, ge=1, le=65_535, description="readings the engine may hold unacknowledged until its next snapshot"
    )
    alerts_group_window_s: float = Field(
        3600.0, ge=0, description="an alert joins a group of its rule and place that fired this long before; 0: none"
    )
    dashboard_url: str = Field("http://localhost:8501", description="base of the links in notifications")
    api_url: str = Field("http://localhost:8600", description="base of the one-click acknowledgement links")
    ack_link_key: SecretStr | None = Field(
        None, description="key signing acknowledgement links (default: $TOWER_DATA_DIR/ack-link.key); never logged"
    )
    ack_link_ttl_s: float = Field(24 * 3600.0, gt=0, description="acknowledgement links expire after this")

    # Store retention
    raw_retention_days: float = Field(30.0, gt=0, description="raw readings older than this are rolled up")
    rollup_retention_days: float = Field(400.0, gt=0, description="1-minute rollups older than this go")
    dead_letter_retention_days: float = Field(14.0, gt=0, description="dead letters older than this go")
    retention_interval_s: float = Field(3600.0, gt=0, description="how often the collector applies retention")

    @field_validator(
        "oncall", "network", "ingest_share_group", "mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file", "api_tokens_file",
        "api_token", "dashboard_users_file", "ack_link_key", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # docker-compose's ${VAR:-} gives empty strings

    @model_validator(mode="after")
    def _store_in_the_data_directory(self) -> Settings:
        """Unless a store is named, it is the data directory's own: another TOWER_DATA_DIR is another tower."""
        if "store" not in self.model_fields_set:
            self.store = f"sqlite:///{self.data_dir / 'tower.db'}"
        return self

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool" / self.ingest_client_id

    @property
    def health_dir(self) -> Path:
        """Heartbeat files of the running services, read by `tower health` (container healthchecks)."""
        return self.data_dir / "health"

    @property
    def registry_path(self) -> Path:
        """Where a backend without relational tables keeps devices and dead letters (SQLite)."""
        return self.data_dir / "registry.db"

    @property
    def master_db(self) -> Path:
        """The master data store: network, shipments, their revisions."""
        return self.data_dir / "master.db"

    @property
    def users_file(self) -> Path:
        return self.dashboard_users_file or self.data_dir / "dashboard-users.yaml"

    @property
    def alerts_db(self) -> Path:
        return self.data_dir / "alerts.db"

    @property
    def alerts_state(self) -> Path:
        """The rule evaluator's snapshot (per-entity state), restored when the engine restarts."""
        return self.data_dir / "alerts-state.pickle"

    def influx_token_value(self) -> str | None:
        if self.influx_token is not None:
            return self.influx_token.get_secret_value()
        if self.influx_token_file is not None:
            return self.influx_token_file.read_text().strip()
        return None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("TOWER_CONFIG")
        if config_file:
            if not Path(config_file).is_file():  # pydantic-settings would ignore it, and every setting with it
                raise ValueError(f"TOWER_CONFIG names {config_file}, which is not a file; fix the path or unset it")
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


# Up to the URL's last @: a password may hold an unescaped / @ ? or #, which a URL parser takes for
# the start of the path, query or fragment (then says "invalid port"); redacting too much is harmless.
_URL_PASSWORD = re.compile(r"//([^/@:?#]*):.*@(?=[^@]*$)")
PASSWORD_ESCAPES = "percent-encode / @ ? # : in a password (%2F %40 %3F %23 %3A)"
_URL_SECRET_PARAMETER = re.compile(r"([?&](?:token|password|passwd|secret|key)=)[^&#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL with any password (and token-like query parameter) replaced by ***, for messages and logs."""
    return _URL_SECRET_PARAMETER.sub(r"\1***", _URL_PASSWORD.sub(r"//\1:***@", url))


def load_settings(**overrides: object) -> Settings:
    """Settings from env and file, with the given non-None overrides (command-line flags) on top."""
    return Settings(**{key: value for key, value in overrides.items() if value is not None})
