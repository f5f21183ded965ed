"""Executors: the same chunks give bit-identical sweep results serially, on local processes and on a real
dask.distributed LocalCluster with two worker processes."""
import importlib
import math

import pytest

from symvae.analysis import SweepPoint, chunk_bounds, make_executor, sweep
from symvae.errors import InvalidInputError

BASE = SweepPoint(params=dict(rho=1.0, eta=1.0, beta=1.0, lam=0.0, tau=0.1), t_max=1000.0, n_grid=1001,
                  metrics=("eg_final", "eg_fp", "fp_stable", "convergence_time", "escape_time"))
GRID = {"beta": [0.3, 0.8, 1.0, 1.5, 2.5], "tau": [0.05, 0.1]}


def test_chunks_bound_the_number_of_tasks():
    bounds = chunk_bounds(10**6, workers=8)
    assert len(bounds) <= 1000
    assert bounds[0][0] == 0 and bounds[-1][1] == 10**6
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert 4 <= len(chunk_bounds(10, workers=2)) <= 8
    assert len(chunk_bounds(10**6, workers=2, chunk_size=1)) == 1000


@pytest.fixture(scope="module")
def serial_rows():
    return sweep(BASE, GRID).rows


def test_serial_sweep_matches_closed_forms(serial_rows):
    # collapse for beta > beta_c = rho + eta: the reached fixed point has m = 0, eg = rho exactly
    by = {(r["beta"], r["tau"]): r for r in serial_rows}
    for (beta, tau), row in by.items():
        assert row["status"] == "ok" and row["fp_stable"] == 1.0
        if beta > 2.0:
            assert row["eg_fp"] == pytest.approx(1.0, abs=1e-10)
        elif tau == 0.05:
            # learned point: eg -> (sqrt(rho) - sqrt(rho + eta - beta))^2 as tau -> 0, with an O(tau) offset
            closed = (1.0 - math.sqrt(2.0 - beta)) ** 2
            off_small, off_large = row["eg_fp"] - closed, by[beta, 0.1]["eg_fp"] - closed
            assert 0.4 < off_small / off_large < 0.6
    assert [r["beta"] for r in serial_rows[:2]] == [0.3, 0.3] and [r["tau"] for r in serial_rows[:2]] == [0.05, 0.1]


def test_process_pool_is_bit_identical(serial_rows):
    with make_executor("processes", workers=2) as ex:
        rows = sweep(BASE, GRID, executor=ex).rows
    assert repr(rows) == repr(serial_rows)  # bit for bit (repr: NaN equals NaN)


def test_dask_local_cluster_is_bit_identical(serial_rows):
    # the test command installs the dask extra (".[test,dask,real]"): a missing dask is a failure, never a skip
    try:
        distributed = importlib.import_module("distributed")
    except ImportError:
        pytest.fail("dask.distributed missing: install the test extras with pip install -e '.[test,dask,real]' "
                    "-c constraints.txt")
    from symvae.analysis import DaskExecutor

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        assert len(cluster.workers) >= 2
        with distributed.Client(cluster) as client:
            seen = []
            ex = DaskExecutor(client=client)
            rows = sweep(BASE, GRID, executor=ex, chunk_size=2, progress=lambda d, n: seen.append((d, n))).rows
            ex.shutdown()
        # the CLI's path: --executor dask --scheduler ADDRESS
        with make_executor("dask", scheduler=cluster.scheduler_address) as ex2:
            rows2 = sweep(BASE, GRID, executor=ex2).rows
    assert repr(rows) == repr(serial_rows)  # bit for bit (repr: NaN equals NaN)
    assert repr(rows2) == repr(serial_rows)
    assert seen[-1] == (10, 10) and len(seen) == 5


def test_bad_executor():
    with pytest.raises(InvalidInputError):
        make_executor("threads")
    with pytest.raises(InvalidInputError):
        make_executor("dask")  # no scheduler address
