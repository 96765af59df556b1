"""Unit tests for the task state machine and job state derivation (farm.states)."""

from __future__ import annotations

import itertools

import pytest

from farm.states import (
    FINISHED_JOB,
    FINISHED_TASK,
    TRANSITIONS,
    JobState,
    TaskState,
    can_transition,
    derive_job_state,
    retry_delay_s,
)

Q, R, S, F, C = (
    TaskState.QUEUED,
    TaskState.RUNNING,
    TaskState.SUCCEEDED,
    TaskState.FAILED,
    TaskState.CANCELED,
)

# --- derive_job_state ------------------------------------------------------------------


def test_job_without_tasks_is_queued() -> None:
    assert derive_job_state([]) is JobState.QUEUED


def test_all_queued_is_queued() -> None:
    assert derive_job_state([Q, Q, Q]) is JobState.QUEUED


def test_one_running_is_running() -> None:
    assert derive_job_state([Q, R, Q]) is JobState.RUNNING


def test_some_succeeded_some_queued_is_running() -> None:
    assert derive_job_state([S, Q, Q]) is JobState.RUNNING


def test_all_succeeded_is_succeeded() -> None:
    assert derive_job_state([S, S, S]) is JobState.SUCCEEDED


@pytest.mark.parametrize("states", [[F], [F, S, S], [F, R], [F, Q], [C, F], [S, R, C, Q, F]])
def test_any_failed_is_failed(states: list[TaskState]) -> None:
    assert derive_job_state(states) is JobState.FAILED


def test_canceled_and_succeeded_with_none_running_is_canceled() -> None:
    assert derive_job_state([S, C, C]) is JobState.CANCELED


def test_canceled_and_queued_with_none_running_is_canceled() -> None:
    assert derive_job_state([C, Q]) is JobState.CANCELED


def test_canceled_while_a_task_still_runs_is_running() -> None:
    assert derive_job_state([C, R, S]) is JobState.RUNNING


def test_derive_accepts_a_generator() -> None:
    assert derive_job_state(s for s in [S, S]) is JobState.SUCCEEDED


def test_derived_job_state_is_order_independent() -> None:
    for states in [[S, C, Q], [R, C, S], [F, R, S], [S, Q, R]]:
        results = {derive_job_state(p) for p in itertools.permutations(states)}
        assert len(results) == 1


# --- can_transition --------------------------------------------------------------------


ALLOWED = {
    (Q, R),
    (Q, C),
    (Q, F),
    (R, S),
    (R, Q),
    (R, F),
    (R, C),
    (F, Q),
}


@pytest.mark.parametrize(("src", "dst"), sorted(ALLOWED))
def test_allowed_transitions(src: TaskState, dst: TaskState) -> None:
    assert can_transition(src, dst) is True


@pytest.mark.parametrize(
    ("src", "dst"),
    sorted(set(itertools.product(TaskState, TaskState)) - ALLOWED),
)
def test_every_other_transition_is_refused(src: TaskState, dst: TaskState) -> None:
    assert can_transition(src, dst) is False


def test_named_refusals() -> None:
    assert can_transition(S, Q) is False
    assert can_transition(C, R) is False
    assert can_transition(S, F) is False
    assert can_transition(Q, S) is False
    assert can_transition(Q, Q) is False


def test_every_transition_has_a_reason() -> None:
    assert set(TRANSITIONS) == ALLOWED
    assert all(isinstance(r, str) and r for r in TRANSITIONS.values())


def test_finished_sets() -> None:
    assert frozenset({S, F, C}) == FINISHED_TASK
    assert frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED}) == FINISHED_JOB


def test_states_are_their_lowercase_names() -> None:
    assert [s.value for s in TaskState] == ["queued", "running", "succeeded", "failed", "canceled"]
    assert [s.value for s in JobState] == [s.value for s in TaskState]


# --- retry_delay_s ---------------------------------------------------------------------


def test_retry_delay_doubles_per_attempt() -> None:
    assert [retry_delay_s(a, 5.0) for a in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]


def test_retry_delay_is_capped() -> None:
    assert retry_delay_s(10, 5.0) == 300.0
    assert retry_delay_s(4, 5.0, cap_s=30.0) == 30.0
    assert retry_delay_s(3, 5.0, cap_s=30.0) == 20.0


def test_retry_delay_attempt_zero_is_the_base() -> None:
    assert retry_delay_s(0, 5.0) == 5.0


def test_retry_delay_is_zero_without_a_base() -> None:
    assert retry_delay_s(1, 0) == 0.0
    assert retry_delay_s(7, 0.0) == 0.0
    assert retry_delay_s(3, -1.0) == 0.0


def test_retry_delay_returns_float() -> None:
    assert isinstance(retry_delay_s(2, 3), float)
    assert retry_delay_s(2, 3) == 6.0
