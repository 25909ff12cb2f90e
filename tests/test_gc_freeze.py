"""The plugin moves what pytest's start-up made to the collector's permanent generation
(pytest_dockernet.process.freeze_start_up), so that pytest's five collections at the end
of the session skip it; what the user's code makes is collected as before."""

import pytest

CONFTEST = """
    import gc

    FROZEN_BEFORE_CONFTEST = gc.get_freeze_count()

    class Mine:
        pass

    MADE_IN_CONFTEST = Mine()
"""

TESTS = """
    import gc
    import weakref

    import conftest

    def test_start_up_is_frozen_and_the_users_objects_are_not():
        assert conftest.FROZEN_BEFORE_CONFTEST > 0
        assert any(o is conftest.MADE_IN_CONFTEST for o in gc.get_objects())

    def test_the_users_cycles_are_collected():
        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is None
"""


def test_start_up_objects_are_frozen_before_the_first_conftest(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_without_the_plugin_nothing_is_frozen(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_it="import conftest\ndef test_it():\n    assert conftest.FROZEN_BEFORE_CONFTEST == 0\n")
    result = pytester.runpytest_subprocess("-p", "no:dockernet")
    result.assert_outcomes(passed=1)


def test_a_conftest_can_unfreeze_them(pytester):
    pytester.makeconftest("import gc\ngc.unfreeze()\n")
    pytester.makepyfile(test_it="import gc\ndef test_it():\n    assert gc.get_freeze_count() == 0\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)


def test_pytest_still_reports_an_exception_of_a_finalizer_at_the_sessions_end(pytester):
    """pytest collects at the end to report what objects left in cycles raise as they die:
    the freeze keeps that working for everything the tests made."""
    pytester.makepyfile(
        """
        class Raises:
            def __del__(self):
                raise RuntimeError("raised by a finalizer")

        def test_leaves_a_cycle():
            a = Raises()
            a.me = a
        """
    )
    result = pytester.runpytest_subprocess("-W", "error::pytest.PytestUnraisableExceptionWarning")
    assert "raised by a finalizer" in result.stdout.str() + result.stderr.str()
    assert result.ret != pytest.ExitCode.OK
