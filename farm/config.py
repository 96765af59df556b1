"""Settings, built once at an entry point (CLI, worker start, tests) and passed down.

Every knob is a ``FARM_*`` environment variable. Units live in the names (``lease_s``).
With neither ``FARM_DATABASE_URL`` nor ``FARM_BROKER_URL`` set, the farm runs its embedded
PostgreSQL and Redis under ``data_dir`` (see :mod:`farm.embedded`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from farm.inputs import parse_roots


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FARM_", extra="ignore")

    database_url: str | None = None
    broker_url: str | None = None
    data_dir: Path = Path(".farm")
    output_root: Path = Path("out")
    # Read-only folders a job may read from besides the output root (data sets, audio,
    # checkpoints): absolute paths separated by os.pathsep, e.g. /mnt/library:/mnt/plates.
    # A plain string, so it passes to worker processes unchanged (farm.inputs reads it).
    input_roots: str = ""
    ffmpeg: str | None = None

    # A running task's lease; its worker extends it every heartbeat_s from a background thread.
    lease_s: float = Field(default=60.0, gt=0)
    heartbeat_s: float = Field(default=10.0, gt=0)
    # A queued task that no worker claimed this long after it was sent: its message is lost.
    unclaimed_s: float = Field(default=120.0, gt=0)
    sweep_interval_s: float = Field(default=5.0, gt=0)
    # Claims per task before a failure is final; re-sends of a lost message per task.
    max_attempts: int = Field(default=3, ge=1)
    max_resends: int = Field(default=10, ge=0)
    retry_backoff_s: float = Field(default=2.0, ge=0)
    # Messages per queue sent ahead of the busy workers. The database, not the broker, picks
    # what to send next, so a small window is what makes priorities hold exactly.
    dispatch_ahead: int = Field(default=2, ge=1)
    # A worker whose delivery has run less than this goes on with its job's next task
    # without a broker message (claimed in the completion's transaction): short tasks cost
    # a transaction each instead of a message, a Celery task and two transactions. 0: never.
    chain_s: float = Field(default=1.0, ge=0)
    # Failed attempts of one job's tasks after which a worker is blocked from that job
    # (0: never block).
    block_after: int = Field(default=2, ge=0)
    # How long a worker keeps retrying its bookkeeping writes through a database outage.
    db_retry_s: float = Field(default=120.0, ge=0)

    # The shared farm (farm.policy): a job naming a project not yet in ``projects`` creates
    # it (weight 1, no cap) when this allows, else the submission is refused. ``fair_share``
    # off sends by priority alone, across projects, as before projects existed.
    auto_create_projects: bool = True
    fair_share: bool = True
    # Timeouts per task kind where a job's spec sets none (farm.timeouts), a JSON object:
    # FARM_DEFAULT_TIMEOUTS='{"render_chunk": {"max_run_s": 3600, "stall_s": 600}}'. A plain
    # string, so it passes to worker processes unchanged.
    default_timeouts: str = ""

    # Celery task events (what Flower draws) from every worker all the time. Off, workers
    # send them only while a Flower is watching: Flower switches them on every few seconds
    # (its enable_events), and the database records every state change either way.
    task_events: bool = False

    # Torch's intra-op threads in each pool process of a worker. Unset: the CPUs this process
    # may run on divided by the worker's concurrency (at least 1), so the processes of a
    # shared CPU box do not oversubscribe it: two torch threads on a contended 2-core box
    # trained 7x slower than one.
    worker_threads: int | None = Field(default=None, ge=1)
    # A worker of ``farm up`` that exits sooner than this after its start failed to start
    # (it would fail again): farm up stops. One that crashes later is restarted with back-off.
    worker_start_s: float = Field(default=30.0, ge=0)

    webhook_secret: str | None = None
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_retry_window_s: float = Field(default=3600.0, gt=0)

    # Retention (farm.retention): the sweeper purges jobs finished more than this many days
    # ago, with their tasks, events, logs and artifacts' files. Unset: kept forever. At
    # least 1: a smaller value is a typo more often than a wish, and `farm purge` is there.
    retention_days: float | None = None

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Flower refuses to start without credentials ("user:password").
    flower_basic_auth: str | None = None
    flower_port: int = 5555

    @field_validator("input_roots")
    @classmethod
    def _absolute_input_roots(cls, v: str) -> str:
        parse_roots(v)  # a relative entry fails here, when the settings are built
        return v

    @field_validator("retention_days")
    @classmethod
    def _retention_at_least_a_day(cls, v: float | None) -> float | None:
        if v is not None and not v >= 1:
            raise ValueError(
                f"FARM_RETENTION_DAYS={v:g}: keep finished jobs at least 1 day (unset: forever;"
                " `farm purge --finished-before` for anything shorter)"
            )
        return v

    @model_validator(mode="after")
    def _applicable_timeouts(self) -> Settings:
        from farm.timeouts import parse_defaults

        parse_defaults(self.default_timeouts, self.heartbeat_s)  # refused when built
        return self

    def timeout_defaults(self) -> dict[str, dict[str, float]]:
        """``default_timeouts`` parsed: task kind -> rule -> seconds."""
        from farm.timeouts import parse_defaults

        return parse_defaults(self.default_timeouts, self.heartbeat_s)

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.broker_url is None

    def sqlalchemy_url(self) -> str:
        if self.database_url is None:
            raise RuntimeError("database_url is not resolved yet (embedded servers not started)")
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    def output_root_abs(self) -> Path:
        return self.output_root.expanduser().resolve()
