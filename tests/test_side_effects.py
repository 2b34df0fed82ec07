"""Importing and using xdeepbedmap leaves the process's global state alone."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dask

from xdeepbedmap.cluster import connect, keep_annotations

PACKAGE = Path(__file__).parents[1] / "xdeepbedmap"

IMPORT_EVERYTHING = textwrap.dedent(
    """
    import copy, importlib, json, pkgutil, sys
    import dask, distributed  # their own defaults are loaded here, not by xdeepbedmap
    before = copy.deepcopy(dask.config.config)
    import xdeepbedmap
    names = [m.name for m in pkgutil.walk_packages(xdeepbedmap.__path__, "xdeepbedmap.")]
    for name in names:
        if not name.endswith("__main__"):  # running it would run the CLI
            importlib.import_module(name)
    print(json.dumps({
        "modules": len(names),
        "config_unchanged": dask.config.config == before,
        "matplotlib": sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib"),
    }))
    """
)


def test_importing_every_module_leaves_dask_config_and_matplotlib_alone():
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING], capture_output=True, text=True, env=os.environ
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["modules"] > 20  # the walk found the package, not an empty path
    assert report["config_unchanged"]
    assert report["matplotlib"] == []  # matplotlib is imported only when a figure is drawn


def test_no_module_configures_matplotlib():
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "matplotlib.use(" in path.read_text()
    ]
    assert offenders == []


def test_connect_leaves_dask_config_unchanged():
    from distributed import Client, LocalCluster

    # no dashboard: without bokeh, each scheduler appends a route to dask's config
    options = {"n_workers": 1, "processes": False, "dashboard_address": None}
    before = copy.deepcopy(dask.config.config)
    with LocalCluster(**options) as cluster, Client(cluster):
        with_plain_client = copy.deepcopy(dask.config.config)  # a Client sets the scheduler
    assert dask.config.config == before
    client = connect("local", **options)
    try:
        assert dask.config.config == with_plain_client  # nothing beyond what Client sets
        assert dask.config.get("optimization.fuse.active", None) is not False
        with keep_annotations():
            assert dask.config.get("optimization.fuse.active") is False
        assert dask.config.config == with_plain_client
    finally:
        client.close()
        client.cluster.close()
    assert dask.config.config == before
