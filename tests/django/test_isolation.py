"""Django's test framework on a schemaless alias: ``TestCase`` rolls the store's writes back
between tests, ``TransactionTestCase`` flushes them, as for any Django database."""

from __future__ import annotations

import unittest
from typing import Any

import pytest
from django.test import TestCase, TransactionTestCase
from feed.models import Entry

pytestmark = pytest.mark.usefixtures("entities")

seen: list[int] = []


def run(case: type[Any]) -> unittest.TestResult:
    """Run a Django test class as ``manage.py test`` would (its databases already set up)."""
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(case)
    result = unittest.TestResult()
    suite.run(result)
    assert not (result.errors or result.failures), result.errors + result.failures
    return result


class Writes:
    """Two tests that each write an entry and record how many they see."""

    databases = {"default", "entities"}
    __test__ = False  # run by the tests below, inside their fresh database, not by pytest

    def test_a(self) -> None:
        Entry.objects.create(user="ann", title="a")
        seen.append(Entry.objects.filter(user="ann").count())

    def test_b(self) -> None:
        Entry.objects.create(user="ann", title="b")
        seen.append(Entry.objects.filter(user="ann").count())


class RolledBack(Writes, TestCase):
    @classmethod
    def setUpTestData(cls) -> None:
        Entry.objects.create(user="ann", title="class-wide")


class Flushed(Writes, TransactionTestCase):
    pass


def test_testcase_rolls_back_each_tests_writes() -> None:
    seen.clear()
    assert run(RolledBack).testsRun == 2
    assert seen == [2, 2]  # the class's entry and the test's own, never the other test's
    assert Entry.objects.count() == 0  # setUpTestData's entry is rolled back too


def test_transaction_testcase_flushes_the_store_after_each_test() -> None:
    seen.clear()
    assert run(Flushed).testsRun == 2
    assert seen == [1, 1]
    assert Entry.objects.count() == 0
