import pytest


@pytest.fixture(autouse=True)
def _one_receiver(settings):
    """Receive on the poll's own thread: a test's transaction would lock out receiver threads."""
    settings.POLL_CONCURRENCY = 1
