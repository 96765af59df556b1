"""One error hierarchy: the CLI maps it to exit codes, the API (later) to HTTP answers."""

from __future__ import annotations


class FarmError(Exception):
    """Raised for any failure the farm itself understands and can explain."""

    exit_code = 1


class SpecError(FarmError):
    """Raised when a job spec is invalid; names the field and the reason."""

    exit_code = 2

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = [f"{field}: {reason}" for field, reason in problems]
        super().__init__("invalid job spec:\n  " + "\n  ".join(lines))


class JobNotFound(FarmError):
    """Raised when a job id or name matches no job."""

    exit_code = 3

    def __init__(self, ref: str) -> None:
        self.ref = ref
        super().__init__(f"no job matches {ref!r}")


class WorkerNotFound(FarmError):
    """Raised when a worker name matches no registered worker."""

    exit_code = 3

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        super().__init__(f"no worker named {name!r} (known: {', '.join(known) or 'none'})")


class InvalidTransition(FarmError):
    """Raised when a status change is not in the state machine's table."""

    def __init__(self, task_id: int | None, from_state: str, to_state: str) -> None:
        self.task_id, self.from_state, self.to_state = task_id, from_state, to_state
        super().__init__(f"task {task_id}: {from_state} -> {to_state} is not allowed")


class JobStateError(FarmError):
    """Raised when a control verb does not apply to the job's current state."""

    exit_code = 4

    def __init__(self, job_id: int, state: str, verb: str) -> None:
        self.job_id, self.state, self.verb = job_id, state, verb
        super().__init__(f"job {job_id} is {state}: cannot {verb} it")


class TaskLost(FarmError):
    """Raised inside a worker when its task was taken from it (lease lost or canceled)."""


class BrokerUnusable(FarmError):
    """Raised when the broker cannot take a message for a reason that retrying will not fix
    (a missing transport module, a refused password, a URL Celery cannot use)."""

    def __init__(self, url: str, reason: str, hint: str, job_id: int | None = None) -> None:
        self.url, self.reason, self.hint, self.job_id = url, reason, hint, job_id
        super().__init__(self._message())

    def _message(self) -> str:
        recorded = (
            f"job {self.job_id} is recorded and will be sent once this is fixed; "
            if self.job_id is not None
            else ""
        )
        return f"cannot send to the broker {self.url}: {self.reason}\n{recorded}{self.hint}"

    def for_job(self, job_id: int) -> BrokerUnusable:
        self.job_id = job_id
        self.args = (self._message(),)
        return self


class TaskNotFound(FarmError):
    """Raised when a task id (or one of its attempts) matches no task."""

    exit_code = 3

    def __init__(self, task_id: int, attempt: int | None = None) -> None:
        self.task_id, self.attempt = task_id, attempt
        what = f"task {task_id}" + (f" attempt {attempt}" if attempt is not None else "")
        super().__init__(f"no {what}")


class InvalidOption(FarmError):
    """Raised when a command-line option or query parameter has a value the farm cannot use;
    names the option and the reason."""

    exit_code = 2

    def __init__(self, option: str, reason: str) -> None:
        self.option, self.reason = option, reason
        super().__init__(f"{option}: {reason}")
