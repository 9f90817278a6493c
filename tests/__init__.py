import pytest

# Helper modules whose plain `assert`s should report like a test's own.
pytest.register_assert_rewrite("tests.fixtures.assertions", "tests.auth.helpers")
