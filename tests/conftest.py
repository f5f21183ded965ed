import os

import pytest
from hypothesis import HealthCheck, settings

# JIT compilation counts against hypothesis' per-example deadline: no deadline.
settings.register_profile("symvae", deadline=None, max_examples=40,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("ci" if os.environ.get("CI") else "symvae")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (CI runs the fast version of each check)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def torch_one_thread():
    """The real-data tests: PyTorch and threadpoolctl must be installed (CI installs the `real` extra: a missing
    extra fails, it is never skipped), and BLAS/PyTorch run on one thread so timings and results are stable."""
    try:
        import torch  # noqa: F401
        from threadpoolctl import threadpool_limits
    except ImportError:
        pytest.fail("PyTorch / threadpoolctl missing: CI installs them with pip install -e '.[test,dask,real]' "
                    "-c constraints.txt")
    with threadpool_limits(1):
        yield
