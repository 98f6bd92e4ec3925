"""Tasks shared by the verifier tests."""

from __future__ import annotations

import pytest

from sipdo.verifiers import CodeTask

SQUARES_REF = '''
def sum_of_squares(xs: list[int]) -> int:
    """Sum of the squares of the even numbers in xs."""
    total = 0
    for x in xs:
        if x % 2 == 0:
            total += x * x
    return total
'''

SQUARES_TESTS = """
from solution import sum_of_squares

def test_basic():
    assert sum_of_squares([1, 2, 3, 4]) == 20

def test_negative():
    assert sum_of_squares([-2, 5]) == 4

def test_empty():
    assert sum_of_squares([]) == 0
"""


@pytest.fixture(scope="session")
def squares_task() -> CodeTask:
    """A small task whose tests are weak enough to be gamed by a naive cheat."""
    return CodeTask(
        prompt="def sum_of_squares(xs: list[int]) -> int:\n    '''Sum of squares of the evens.'''\n",  # noqa: E501
        entry_point="sum_of_squares",
        reference_solution=SQUARES_REF,
        tests=SQUARES_TESTS,
    )
