"""vimae.runs.jobs.run_jobs: results in the order of the tasks, each handed to `on_result` as soon
as it is done, so a part killed (or failing) half-way keeps what had finished."""

import time

import pytest

from vimae.runs.jobs import run_jobs


def square_or_fail(x: int, delay: float) -> int:
    """A task: x * x after `delay` seconds, ValueError for a negative x."""
    time.sleep(delay)
    if x < 0:
        raise ValueError(f"negative {x}")
    return x * x


@pytest.mark.parametrize("jobs", [1, 2])
def test_results_come_back_in_order_and_each_is_handed_over(jobs):
    kept: dict[int, int] = {}
    results = run_jobs(
        square_or_fail, [(3, 0.4), (2, 0.0), (5, 0.0)], jobs, on_result=kept.__setitem__
    )
    assert results == [9, 4, 25]
    assert kept == {0: 9, 1: 4, 2: 25}


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_failing_task_raises_after_the_finished_ones_were_handed_over(jobs):
    kept: dict[int, int] = {}
    # the failure comes last in time (after a delay), the task before it finishes first
    with pytest.raises(ValueError, match="negative -1"):
        run_jobs(square_or_fail, [(2, 0.0), (-1, 0.5)], jobs, on_result=kept.__setitem__)
    assert kept == {0: 4}
